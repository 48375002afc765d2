/**
 * The codec of the storage formats, in three parts: CBOR (cbor.ts: encoding, decoding, scanning
 * untrusted bytes with limits), zstd (zstd.ts: the frame writer and the bounded streaming reader)
 * and the snapshot's chunk encodings (columns.ts: version 1; chunk-v2.ts: version 2). This module
 * re-exports them for the storage library, the tools and the tests.
 */
export * from './cbor.js';
export * from './zstd.js';
export * from './columns.js';
