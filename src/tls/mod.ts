/**
 * TLS for bws: certificate loading and HTTPS listeners with SNI and live certificate swap.
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
