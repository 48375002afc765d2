// Writes oclif.manifest.json (run at `prepare`, after the build): the commands' help data, so
// that oclif (--help, completion) does not import every command to list them. The same manifest
// `oclif manifest` writes, made with @oclif/core's own Plugin loader, without the oclif CLI
// package. The offline commands themselves never load oclif (src/cli/main.ts).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Plugin } from '@oclif/core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'oclif.manifest.json');
fs.rmSync(out, { force: true });
const plugin = new Plugin({ root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true, isRoot: true });
await plugin.load();
fs.writeFileSync(out, JSON.stringify(plugin.manifest, null, 2) + '\n');
console.log(`wrote ${path.relative(process.cwd(), out)}: ${Object.keys(plugin.manifest.commands).length} commands`);
