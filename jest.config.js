/** Unit, schema and consumer tests. The real-API-server and real-process suites have their own configs. */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  // Type-checking happens once, in __tests__/typecheck.test.ts (tsc --noEmit over the whole project).
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
};
