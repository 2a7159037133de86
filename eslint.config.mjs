// ESLint for the browser extension (plain ES modules, no build step).
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["node_modules/**", "dist/**", "test-output/**", ".venv/**"] },
  js.configs.recommended,
  {
    files: ["extension/**/*.js"],
    languageOptions: {
      ecmaVersion: 2024,
      sourceType: "module",
      globals: { ...globals.browser, ...globals.serviceworker, ...globals.webextensions },
    },
    rules: {
      "no-unused-vars": ["error", { argsIgnorePattern: "^_", caughtErrors: "none" }],
      "no-var": "error",
      "prefer-const": "error",
      eqeqeq: ["error", "always", { null: "ignore" }],
      "no-implicit-globals": "error",
      "no-restricted-syntax": [
        "error",
        { selector: "CallExpression[callee.name='eval']", message: "no eval: no remote code" },
        { selector: "NewExpression[callee.name='Function']", message: "no Function(): no remote code" },
        {
          selector: "AssignmentExpression[left.property.name=/^(innerHTML|outerHTML)$/]",
          message: "build DOM with textContent, never HTML strings",
        },
      ],
    },
  },
  {
    files: ["extension/content/**/*.js"],
    languageOptions: { sourceType: "script" },
  },
  {
    // Unit tests of the extension's modules under `node --test`, with a fake browser.
    files: ["tests/extension/js/**/*.mjs"],
    languageOptions: {
      ecmaVersion: 2024,
      sourceType: "module",
      globals: { ...globals.node },
    },
  },
];
