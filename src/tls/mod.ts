/**
 * TLS for bws: certificate loading and TLS listeners with SNI, ALPN and live certificate swap.
 *
 * @module
 */

export { type CertificatePair, loadCertificateFiles, parseCertificatePair } from "./certs.ts";
export {
  serveTls,
  type TlsConnectionHandler,
  type TlsListener,
  type TlsListenerOptions,
} from "./listener.ts";
