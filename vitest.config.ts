import { defineConfig } from 'vitest/config';

// test/gpu/ needs a CUDA device; scripts/test.sh sets WHALE_GPU_TESTS=1 when one is found.
const gpu = process.env.WHALE_GPU_TESTS === '1';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['**/node_modules/**', ...(gpu ? [] : ['test/gpu/**'])],
    testTimeout: 30_000,
    // Native kernels already use every core; running files one at a time keeps them honest.
    fileParallelism: false,
  },
});
