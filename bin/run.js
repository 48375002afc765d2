#!/usr/bin/env node
// Entry point. `serve` is started once per node by Maelstrom and by the test bed, so it skips
// oclif's start-up and imports the node directly; the offline commands run from their specs
// (dist/cli/main.js) without loading oclif either; --help, completion and `cluster` go to oclif.
const argv = process.argv.slice(2);
const help = argv.includes('--help') || argv.includes('-h');
if (argv[0] === 'serve' && !help) {
  const { main } = await import('../dist/node/main.js');
  await main(argv.slice(1));
} else {
  const { main } = await import('../dist/cli/main.js');
  const r = await main(argv);
  if (r === 'oclif') {
    const { execute } = await import('@oclif/core');
    await execute({ dir: import.meta.url });
  } else process.exitCode = r;
}
