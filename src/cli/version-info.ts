import fs from 'node:fs';

export interface VersionInfo {
  name: string;
  version: string;
  node: string;
  platform: string;
  arch: string;
  /** As oclif's --version prints it: `raftsnap/0.1.0 linux-x64 node-v20.20.2`. */
  line: string;
}

/** This build's version (package.json next to dist/). */
export function readVersion(): VersionInfo {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
  const node = process.version;
  return {
    name: pkg.name,
    version: pkg.version,
    node,
    platform: process.platform,
    arch: process.arch,
    line: `${pkg.name}/${pkg.version} ${process.platform}-${process.arch} node-${node}`,
  };
}
