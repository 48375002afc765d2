export * from './keys.js';
export * from './store.js';
