import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths that must never reach a log line, whatever object a caller hands to the logger.
 * Secrets are also never put into log objects on purpose; this list is the second fence.
 */
export const REDACT_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  '*.*.*.password',
  'clientSecret',
  '*.clientSecret',
  '*.*.clientSecret',
  '*.*.*.clientSecret',
  'accessToken',
  '*.accessToken',
  'refreshToken',
  '*.refreshToken',
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'headers.authorization',
];

/**
 * The fields that name an e-mail server in a log line: ids for machines, names for the person
 * reading (the tenant's name when the caller knows it).
 */
export function serverLogFields(
  server: { id: string; name: string; tenantId: string },
  tenantName?: string,
): { tenantId: string; tenantName?: string; serverId: string; serverName: string } {
  return {
    tenantId: server.tenantId,
    ...(tenantName !== undefined && { tenantName }),
    serverId: server.id,
    serverName: server.name,
  };
}

export interface LoggerOptions {
  /** [level='info'] pino level name. */
  level?: string;
  /** [pretty=false] human-readable output (for a terminal); JSON otherwise. */
  pretty?: boolean;
  /** Where JSON lines go; stdout when absent. Tests pass a capturing stream. */
  destination?: DestinationStream;
  /** [false] write to stderr instead of stdout (the CLI keeps stdout for its output). */
  stderr?: boolean;
  /** This engine instance's name, on every line (several instances share one database). */
  instanceId?: string;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const base = {
    level: options.level ?? 'info',
    base: { service: 'mailroom', ...(options.instanceId !== undefined && { instanceId: options.instanceId }) },
    redact: { paths: REDACT_PATHS, censor: '******' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (options.destination) return pino(base, options.destination);
  const fd = options.stderr ? 2 : 1;
  if (options.pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true, destination: fd } } });
  }
  return pino(base, pino.destination({ fd, sync: false }));
}
