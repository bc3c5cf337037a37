/** The outcome of one side of an e-mail server's connection test ("Test connection"). */
export interface ConnectionTestResult {
  ok: boolean;
  /** What happened, in words an administrator can act on (never a secret). */
  detail: string;
  /** How long the test took, ms. */
  ms: number;
}

/** How long each side of a connection test may take to connect and to be greeted, ms. */
export const CONNECTION_TEST_TIMEOUT_MS = 15_000;

/** Runs `attempt` and times it; a failure becomes `{ ok: false }` with `describe(err)`. */
export async function timedTest(
  attempt: () => Promise<string>,
  describe: (err: unknown) => string,
): Promise<ConnectionTestResult> {
  const started = performance.now();
  const ms = (): number => Math.round(performance.now() - started);
  try {
    const detail = await attempt();
    return { ok: true, detail, ms: ms() };
  } catch (err) {
    return { ok: false, detail: describe(err), ms: ms() };
  }
}
