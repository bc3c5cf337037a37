/**
 * A fake Microsoft identity platform for tests and local runs: HTTPS on loopback with its own
 * CA, device-code, refresh-token and client-credentials grants, and hooks to approve codes,
 * revoke users and expire tokens, and a sign-in page at its `verificationUri` for people; and Google's token endpoint for service accounts (`/token`).
 * Start one with `startFakeIdp()`.
 */
export { startFakeIdp } from './server.js';
export type { FakeIdp, FakeIdpOptions } from './server.js';
export type { DeviceCodeInfo, FakeIdpApp, TokenRequestRecord } from './directory.js';
export { makeTestCertificates, type TestCertificates } from './certificates.js';
export { loadOrMakeCertificates, type CertificateFiles } from './certificate-files.js';
export { makeServiceAccountKeyFile, type FakeServiceAccount } from './google-service-accounts.js';
