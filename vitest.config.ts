import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two test files at a time: many tests wait on real child processes, so two workers keep a
    // 2-core machine busy (the default, cores - 1, runs files one by one there).
    maxWorkers: 2,
  },
});
