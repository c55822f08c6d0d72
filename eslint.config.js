import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  // deploy/aws is its own package, with its own dependencies and checks (its npm test).
  { ignores: ['dist/', 'coverage/', '.tap/', 'node_modules/', 'demo/vendor/', 'deploy/aws/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }]
    }
  },
  {
    // The demo page: plain browser JavaScript, run as a module by the browser.
    files: ['demo/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: Object.fromEntries(['window', 'document', 'fetch', 'crypto', 'localStorage', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout']
        .map((name) => [name, 'readonly']))
    }
  }
)
