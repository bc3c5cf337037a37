/**
 * Splits the client's byte stream into frames: one command line together with the literals it
 * carries (`{n}` synchronising, `{n+}` non-synchronising), or one continuation line (an
 * AUTHENTICATE answer, the DONE that ends IDLE). A frame keeps its bytes exactly as sent, so the
 * parser sees each literal's length marker and reads the literal bytes that follow it.
 */

/** Longest line accepted outside a literal [bytes]. */
const MAX_LINE_LENGTH = 64 * 1024;
/** Largest literal accepted [bytes]. */
export const MAX_LITERAL_SIZE = 64 * 1024 * 1024;

const LITERAL_AT_END = /\{(\d{1,10})(\+)?\}\r?\n$/;

export interface FramerHandlers {
  /** A complete frame, including the final line break. */
  frame(bytes: Buffer): void;
  /** The client waits for permission to send a synchronising literal. */
  literalRequested(size: number): void;
  /** The input can not be framed (a line or a literal over the limits); the connection should end. */
  overflow(reason: string): void;
}

export class CommandFramer {
  private pending: Buffer = Buffer.alloc(0);
  private parts: Buffer[] = [];
  private literalRemaining = 0;
  private failed = false;

  constructor(private readonly handlers: FramerHandlers) {}

  push(chunk: Buffer): void {
    if (this.failed) {
      return;
    }
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    for (;;) {
      if (this.literalRemaining > 0) {
        if (this.pending.length < this.literalRemaining) {
          this.parts.push(this.pending);
          this.literalRemaining -= this.pending.length;
          this.pending = Buffer.alloc(0);
          return;
        }
        this.parts.push(this.pending.subarray(0, this.literalRemaining));
        this.pending = this.pending.subarray(this.literalRemaining);
        this.literalRemaining = 0;
      }
      const end = this.pending.indexOf(0x0a);
      if (end < 0) {
        if (this.pending.length > MAX_LINE_LENGTH) {
          this.fail('Line too long');
        }
        return;
      }
      const line = this.pending.subarray(0, end + 1);
      this.pending = this.pending.subarray(end + 1);
      this.parts.push(line);
      const literal = LITERAL_AT_END.exec(line.subarray(Math.max(0, line.length - 16)).toString('latin1'));
      if (!literal) {
        const frame = Buffer.concat(this.parts);
        this.parts = [];
        this.handlers.frame(frame);
        continue;
      }
      const size = Number(literal[1]);
      if (size > MAX_LITERAL_SIZE) {
        this.fail('Literal too large');
        return;
      }
      this.literalRemaining = size;
      if (!literal[2]) {
        this.handlers.literalRequested(size);
      }
    }
  }

  private fail(reason: string): void {
    this.failed = true;
    this.pending = Buffer.alloc(0);
    this.parts = [];
    this.handlers.overflow(reason);
  }
}
