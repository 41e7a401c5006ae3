// Lint rules for rrts: @eslint/js recommended everywhere, typescript-eslint's type-checked set on src/ and test/.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The Node.js globals the plain .mjs scripts use (the `globals` package is not a direct dependency).
const nodeGlobals = Object.fromEntries(
  [
    'process',
    'console',
    'Buffer',
    'URL',
    'URLSearchParams',
    'setTimeout',
    'clearTimeout',
    'setInterval',
    'clearInterval',
    'setImmediate',
    'clearImmediate',
    'performance',
    'fetch',
    'AbortController',
    'TextEncoder',
    'TextDecoder',
    'queueMicrotask',
    'structuredClone',
    'globalThis',
  ].map((name) => [name, 'readonly']),
);

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'build/', 'schema/'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test's describe/it/test return promises the runner itself awaits; awaiting them at top level is not the idiom.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] }] },
      ],
      // Implementations of Promise-returning interfaces (Plugin.status, pool fakes, RPC tables) are async without an await.
      '@typescript-eslint/require-await': 'off',
      // Flags String() of parsed YAML/JSON/msgpack values narrowed to {}; those are stringified on purpose for messages.
      '@typescript-eslint/no-base-to-string': 'off',
    },
  },
  {
    // Tests read the PHP fixtures' JSON answers as `any`; the assertions on them are the runtime check.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  // The bench and schema scripts are plain ESM JavaScript outside tsconfig, so they get the rules without type info.
  {
    files: ['**/*.mjs', '**/*.js'],
    extends: [js.configs.recommended],
    languageOptions: { sourceType: 'module', globals: nodeGlobals },
  },
);
