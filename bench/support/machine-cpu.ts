/**
 * How busy the whole machine is (every process, the kernel included), from /proc/stat: the CPU
 * of PostgreSQL, of the kernel's file system work and of libuv's threads does not show in a
 * process's event-loop figures. Linux only; elsewhere the meter answers null.
 */
import { readFileSync } from 'node:fs';

interface CpuTimes {
  busy: number;
  total: number;
}

function read(): CpuTimes | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    // cpu user nice system idle iowait irq softirq steal …
    const fields = line.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/** Starts a meter; calling it gives the cores kept busy on average since then (0 to the core count). */
export function machineCpuMeter(cores: number): () => number | null {
  const start = read();
  return () => {
    const end = read();
    if (!start || !end || end.total === start.total) return null;
    return Math.round(((end.busy - start.busy) / (end.total - start.total)) * cores * 100) / 100;
  };
}
