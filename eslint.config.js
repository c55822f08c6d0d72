import js from '@eslint/js'
import stylistic from '@stylistic/eslint-plugin'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  // deploy/aws is its own package, with its own dependencies and checks (its npm test).
  { ignores: ['dist/', 'packages/*/dist/', 'packages/*/.build-check-*/', 'coverage/', '.tap/', 'node_modules/', 'demo/vendor/', 'deploy/aws/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  // One code style everywhere (src, test, bench, demo): the standard style, which the code was
  // written in: two spaces, single quotes, no semicolons, a space before a function's parentheses.
  stylistic.configs.customize({ indent: 2, quotes: 'single', semi: false, braceStyle: '1tbs', commaDangle: 'never', arrowParens: true }),
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@stylistic/space-before-function-paren': ['error', 'always'],
      // Long lines are split where it reads best, not at a column.
      '@stylistic/max-len': 'off',
      '@stylistic/operator-linebreak': ['error', 'after', { overrides: { '?': 'before', ':': 'before', '|': 'before', '&': 'before' } }],
      '@stylistic/multiline-ternary': 'off',
      '@stylistic/member-delimiter-style': ['error', { multiline: { delimiter: 'none' }, singleline: { delimiter: 'semi', requireLast: false } }],
      '@stylistic/max-statements-per-line': 'off',
      '@stylistic/quote-props': ['error', 'as-needed']
    }
  },
  {
    // The demo page: plain browser JavaScript, run as a module by the browser.
    files: ['demo/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: Object.fromEntries(['window', 'document', 'fetch', 'crypto', 'localStorage', 'navigator', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout']
        .map((name) => [name, 'readonly']))
    }
  }
)
