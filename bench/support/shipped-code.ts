/**
 * Makes a benchmark run the engine as it ships: `--import` this after tsx, and every module of
 * `src/` (the benchmark's own imports and those of the test helpers it uses) is loaded from the
 * tsc build in `dist/` instead (`npm run build`; bench/run.ts builds first). tsx would otherwise
 * compile src/ with esbuild's `keepNames`, which names every closure as it is made (a
 * `defineProperty` each time): work `node dist/cli/bin.js` never does.
 */
import { register } from 'node:module';

register('./shipped-code-hooks.js', import.meta.url);
// For benchmarks that start the engine as a process of its own (scale-idle): the build as well.
process.env.BENCH_ENGINE_CODE = 'dist';
