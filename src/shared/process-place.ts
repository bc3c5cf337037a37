import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * Where a process id means something: this host name, this boot of the kernel
 * (`/proc/sys/kernel/random/boot_id`) and this PID namespace (`/proc/self/ns/pid`, its inode; a
 * container has its own). Two processes with the same place see the same process table, so one
 * may tell whether the other's pid still runs. Null where this cannot be read (not Linux, /proc
 * hidden): then nothing is ever inferred from a pid.
 */
export function processPlace(): string | null {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const pidNamespace = readlinkSync('/proc/self/ns/pid');
    if (!boot || !pidNamespace) return null;
    return `${hostname()}/${boot}/${pidNamespace}`;
  } catch {
    return null;
  }
}

/**
 * Whether no process with this pid exists in this process's PID namespace (signal 0: nothing is
 * sent). EPERM means a process of another user holds the pid: it exists, so not gone. Our own pid
 * is never called gone: a predecessor that had it is surely gone, but so is nothing when the
 * record is of another part of this very process (tests run several instances in one), and the
 * two cannot be told apart here; such leases lapse on their own.
 */
export function processGone(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
