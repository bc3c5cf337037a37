import { runCleanups } from './cleanup.js';
import { startExitWatchdog, traceServerOrigins } from './exit-watchdog.js';

traceServerOrigins();

/** Mocha root hooks: whatever a test file registered with addCleanup is stopped at the very end. */
export const mochaHooks = {
  async afterAll(): Promise<void> {
    await runCleanups();
    startExitWatchdog();
  },
};
