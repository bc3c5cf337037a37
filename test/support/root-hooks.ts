import { runCleanups } from './cleanup.js';
import { startExitWatchdog } from './exit-watchdog.js';

/** Mocha root hooks: whatever a test file registered with addCleanup is stopped at the very end. */
export const mochaHooks = {
  async afterAll(): Promise<void> {
    await runCleanups();
    startExitWatchdog();
  },
};
