/**
 * The data root of `raftsnap cluster`: one directory per node (and the shared working directory
 * of `--bin` nodes). A run clears only directories that an earlier run recorded as its own in the
 * marker file; everything else in the root (files a user put there) is left alone, and a run that
 * would have to clear a directory it did not make refuses, naming it.
 */
import { lstat, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The file in a data root that records which of its directories the runner made. */
export const DATA_ROOT_MARKER = '.raftsnap-cluster';

/** Version of the marker's JSON (`{"createdBy", "version", "dirs", "at"}`). */
const MARKER_VERSION = 1;

const PLAIN_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

async function kind(path: string): Promise<'missing' | 'dir' | 'other'> {
  try {
    return (await lstat(path)).isDirectory() ? 'dir' : 'other';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw e;
  }
}

/** The directories an earlier run recorded; [] for a marker of a version that did not record them. */
async function recordedDirs(root: string): Promise<string[]> {
  const path = join(root, DATA_ROOT_MARKER);
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    const why = e instanceof SyntaxError ? 'not JSON' : (e as Error).message;
    throw new Error(`data root ${root}: ${DATA_ROOT_MARKER} cannot be read (${why}); refusing to use the data root`);
  }
  if (typeof doc !== 'object' || doc === null || (doc as { createdBy?: unknown }).createdBy !== 'raftsnap cluster') {
    throw new Error(`data root ${root}: ${DATA_ROOT_MARKER} was not written by raftsnap cluster; refusing to use the data root`);
  }
  const dirs = (doc as { dirs?: unknown }).dirs;
  if (dirs === undefined) return [];
  if (!Array.isArray(dirs) || !dirs.every((d) => typeof d === 'string' && PLAIN_NAME.test(d))) {
    throw new Error(`data root ${root}: ${DATA_ROOT_MARKER} has a malformed "dirs" list; refusing to use the data root`);
  }
  return dirs as string[];
}

async function writeMarker(root: string, dirs: readonly string[]): Promise<void> {
  const path = join(root, DATA_ROOT_MARKER);
  const doc = { createdBy: 'raftsnap cluster', version: MARKER_VERSION, dirs: [...dirs].sort(), at: new Date().toISOString() };
  await writeFile(`${path}.tmp`, JSON.stringify(doc) + '\n');
  await rename(`${path}.tmp`, path);
}

/**
 * Makes `root` ready for a run that needs the (empty) directories `dirs`: creates the root when it
 * does not exist; refuses a root that is not empty and has no marker, and a needed directory that
 * exists without the marker naming it; clears the directories the marker names (a run's own, from
 * before), and records `dirs` in the marker before creating them. Nothing else is touched.
 * Every check is made before anything is removed.
 */
export async function prepareDataRoot(root: string, dirs: readonly string[]): Promise<void> {
  for (const d of dirs) if (!PLAIN_NAME.test(d)) throw new Error(`data root directory name ${JSON.stringify(d)} is not a plain name`);
  const k = await kind(root);
  if (k === 'other') throw new Error(`data root ${root} is not a directory`);
  let recorded: string[] = [];
  if (k === 'missing') await mkdir(root, { recursive: true });
  else {
    const entries = await readdir(root);
    if (entries.includes(DATA_ROOT_MARKER)) recorded = await recordedDirs(root);
    else if (entries.length > 0) {
      throw new Error(
        `data root ${root} is not empty and was not made by raftsnap cluster (no ${DATA_ROOT_MARKER} file); refusing to use it (pass another --data-root)`,
      );
    }
    for (const d of dirs) {
      if (entries.includes(d) && !recorded.includes(d)) {
        throw new Error(
          `data root ${root}: ${d} exists but no earlier run recorded it as its own (in ${DATA_ROOT_MARKER}); refusing to clear it (move it away or pass another --data-root)`,
        );
      }
    }
  }
  // Record first: a run that stops half-way leaves nothing unrecorded behind.
  const all = [...new Set([...recorded, ...dirs])];
  await writeMarker(root, all);
  for (const d of recorded) await rm(join(root, d), { recursive: true, force: true });
  await writeMarker(root, dirs);
  for (const d of dirs) await mkdir(join(root, d));
}
