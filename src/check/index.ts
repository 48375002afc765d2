export * from './history.js';
export * from './linearizability.js';
