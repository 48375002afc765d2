/** The production FileSystem: node:fs, synchronous (but for fsyncAsync). */
import fs from 'node:fs';
import type { FileStat, FileSystem, OpenFlags } from './fs.js';

export const nodeFs: FileSystem = {
  open: (p: string, flags: OpenFlags, mode?: number) => fs.openSync(p, flags, mode),
  close: (fd) => fs.closeSync(fd),
  read: (fd, buf, offset, length, position) => fs.readSync(fd, buf, offset, length, position),
  write: (fd, buf, offset, length, position) => fs.writeSync(fd, buf, offset, length, position ?? null),
  fsync: (fd) => fs.fsyncSync(fd),
  // libuv's thread pool: the event loop is free while the disk works.
  fsyncAsync: (fd) =>
    new Promise<void>((resolve, reject) => {
      fs.fsync(fd, (err) => (err ? reject(err) : resolve()));
    }),
  ftruncate: (fd, length) => fs.ftruncateSync(fd, length),
  fstat: (fd): FileStat => fs.fstatSync(fd),
  rename: (from, to) => fs.renameSync(from, to),
  link: (existing, newPath) => fs.linkSync(existing, newPath),
  unlink: (p) => fs.unlinkSync(p),
  rmdir: (p) => fs.rmdirSync(p),
  mkdir: (p, opts) => {
    fs.mkdirSync(p, opts?.recursive ? { recursive: true } : undefined);
  },
  readdir: (p) => fs.readdirSync(p),
  stat: (p): FileStat => fs.statSync(p),
  access: (p, mode) => fs.accessSync(p, mode === 'write' ? fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK : fs.constants.R_OK),
  readFile: (p) => fs.readFileSync(p),
};
