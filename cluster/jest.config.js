/**
 * The real-API-server suite (npm run test:cluster, through cluster/run.sh, which builds or reuses the
 * binaries and sets K8S_BIN / ETCD_BIN). Each test file starts its own etcd + kube-apiserver +
 * kube-controller-manager, so files run one at a time (2 cores; the API server is CPU-hungry).
 */
module.exports = {
  rootDir: __dirname,
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>'],
  testMatch: ['<rootDir>/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }] },
  maxWorkers: 1,
  testTimeout: 180000,
  verbose: true,
};
