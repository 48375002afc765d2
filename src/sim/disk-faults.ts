/**
 * The disk faults the simulator injects into a node's SimFs (docs/SIMULATION.md, "Disk faults"),
 * and how a node's error is recognised as caused by one.
 */
import type { Random } from './random.js';
import type { SimFs } from './sim-fs.js';

export type DiskFaultCode = 'EIO' | 'ENOSPC' | 'EROFS';

/** A fault injected into a node's disk by the nemesis or a scenario, until it is cleared. */
export interface DiskFault {
  /** What it is, for the trace ("EIO at the 3th fsync", "disk full 500 bytes from now", "read-only"). */
  readonly what: string;
  clear(): void;
}

/**
 * Make `fs` fail: `EIO` at the n-th next write, fsync, rename, open or mutating call; `ENOSPC`,
 * a capacity a little above what is used (short writes first; compaction may free space as fast
 * as the WAL grows, so it may never fill) or at the n-th next write; `EROFS` on every mutating
 * call from now. `soon`: only faults that every Ready that persists reaches within a few calls
 * (EIO on one of the next 4 writes or fsyncs, ENOSPC on one of the next 8 writes, EROFS), not a
 * rename, which only a rotation or a snapshot makes.
 */
export function injectDiskFault(fs: SimFs, code: DiskFaultCode, r: Random, soon = false): DiskFault {
  if (code === 'EIO') {
    const kind = soon ? r.pick(['write', 'fsync'] as const) : r.pick(['write', 'fsync', 'rename', 'open', undefined] as const);
    const nth = 1 + r.int(soon ? 4 : 12);
    const h = fs.addFault(kind ? { kind, error: 'EIO', nth } : { error: 'EIO', nth });
    return { what: `EIO at the ${nth}th ${kind ?? 'mutating call'}`, clear: () => h.remove() };
  }
  if (code === 'ENOSPC') {
    const room = r.int(1024);
    if (!soon && r.chance(0.5)) {
      fs.setCapacity({ bytes: fs.usedBytes + room, shortWrites: r.chance(0.7) });
      return { what: `disk full ${room} bytes from now`, clear: () => fs.setCapacity(null) };
    }
    const nth = 1 + r.int(8);
    const h = fs.addFault({ kind: 'write', error: 'ENOSPC', nth });
    return { what: `ENOSPC at the ${nth}th write`, clear: () => h.remove() };
  }
  fs.setReadOnly(true);
  return { what: 'read-only', clear: () => fs.setReadOnly(false) };
}

/** The errno of an injected disk fault behind `e` (through StorageError's errno and causes), or null. */
export function injectedErrno(e: unknown): DiskFaultCode | null {
  let x: unknown = e;
  for (let i = 0; i < 8 && x instanceof Error; i++, x = x.cause) {
    const c = (x as { errno?: unknown; code?: unknown }).errno ?? (x as { code?: unknown }).code;
    if (c === 'EIO' || c === 'ENOSPC' || c === 'EROFS') return c;
  }
  return null;
}
