import type { Results } from '@electric-sql/pglite';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { PGliteDriver } from 'typeorm-pglite';
import { PGlitePool } from 'typeorm-pglite/dist/pglite-pool.js';

type ConnectCallback = Parameters<PGlitePool['connect']>[0];
type QueryCallback = (error: unknown, results: Results<unknown> | null) => void;

/**
 * PGlite is one database session. typeorm-pglite hands that session to every TypeORM query
 * runner at once, so a transaction would swallow (or roll back) statements of unrelated
 * requests running beside it. This pool hands the session to one query runner at a time:
 * others wait in `connect` until it is released, as with a `pg` pool of size one.
 * It also reports `rowCount`, which TypeORM reads for UPDATE and DELETE results.
 */
class ExclusivePGlitePool extends PGlitePool {
  private busy = false;
  private readonly waiting: Array<() => void> = [];

  override connect(callback: ConnectCallback): Promise<void> {
    const grant = (): void => {
      this.busy = true;
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        const next = this.waiting.shift();
        if (next) next();
        else this.busy = false;
      };
      void super.connect((err, client) => {
        if (err) release();
        callback(err, client, release);
      });
    };
    if (this.busy) this.waiting.push(grant);
    else grant();
    return Promise.resolve();
  }

  override async query(sql: string, params?: unknown[], callback?: QueryCallback): Promise<Results<unknown>> {
    const cb = typeof params === 'function' ? (params as QueryCallback) : callback;
    const args = typeof params === 'function' ? undefined : params;
    try {
      const result = await super.query(sql, args);
      const withCount = result as Results<unknown> & { rowCount?: number };
      if (withCount.rowCount === undefined && result.affectedRows !== undefined)
        withCount.rowCount = result.affectedRows;
      cb?.(null, result);
      return result;
    } catch (err) {
      cb?.(err, null);
      throw err;
    }
  }
}

/** The `driver` option for a TypeORM postgres DataSource backed by PGlite in `dataDir`. */
export function pgliteDriver(dataDir: string | undefined): object {
  // PGliteDriver registers the instance options (and a boolean serializer) globally. pg_trgm, for
  // the trace search's trigram indexes (migration 0041), is a contrib module PGlite ships apart:
  // it must be named when the instance is made (https://pglite.dev/extensions/), then
  // CREATE EXTENSION installs it as in PostgreSQL.
  const extensions = { pg_trgm };
  new PGliteDriver(dataDir === undefined ? { extensions } : { dataDir, extensions });
  return { Pool: ExclusivePGlitePool };
}
