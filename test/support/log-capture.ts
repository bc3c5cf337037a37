import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/shared/logger.js';

/** A pino logger whose JSON lines are kept in memory, so tests can search what was logged. */
export function capturingLogger(level = 'trace'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== ''),
      );
      done();
    },
  });
  return { logger: createLogger({ level, destination: stream }), lines };
}
