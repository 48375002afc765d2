#!/usr/bin/env node
// Entry point. `serve` is started once per node by Maelstrom and by the test bed, so it skips
// oclif's start-up and imports the node directly; every other command goes through oclif.
const argv = process.argv.slice(2);
if (argv[0] === 'serve' && !argv.includes('--help') && !argv.includes('-h')) {
  const { main } = await import('../dist/node/main.js');
  await main(argv.slice(1));
} else {
  const { execute } = await import('@oclif/core');
  await execute({ dir: import.meta.url });
}
