/**
 * One answer shared by the checks of one key made within `maxAgeMs` of each other: a thousand
 * event streams of one token re-authorising at their keep-alives cost one database read, not a
 * thousand. Only for checks that may be that old (keep-alives); a check that decides whether
 * something new is handed out is made afresh. A failed check is not kept.
 */
export class SharedChecks {
  private readonly answers = new Map<string, { at: number; answer: Promise<boolean> }>();

  constructor(
    private readonly maxAgeMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  check(key: string, fn: () => Promise<boolean>): Promise<boolean> {
    const at = this.now();
    const known = this.answers.get(key);
    if (known && at - known.at < this.maxAgeMs) return known.answer;
    if (this.answers.size >= MAX_KEYS) this.forgetOld(at);
    const answer = fn();
    this.answers.set(key, { at, answer });
    answer.catch(() => {
      if (this.answers.get(key)?.answer === answer) this.answers.delete(key);
    });
    return answer;
  }

  private forgetOld(at: number): void {
    for (const [key, { at: then }] of this.answers) if (at - then >= this.maxAgeMs) this.answers.delete(key);
  }
}

/** [10000] keys at most before old answers are dropped. */
const MAX_KEYS = 10_000;
