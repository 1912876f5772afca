import Foundation
import NIOSSL

/// Reads PEM certificates and keys, with errors that name the file and the role it plays.
enum PEMFiles {
    /// The bytes of `path`. `role` says what the file is for ("certificate", "client CA").
    static func read(_ path: String, role: String) throws(TLSFileError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TLSFileError("TLS \(role) file \(path): cannot read it")
        }
        return Array(data)
    }

    /// Every certificate in `bytes` (PEM), in file order; at least one.
    static func certificates(_ bytes: [UInt8], path: String, role: String) throws(TLSFileError) -> [NIOSSLCertificate] {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMBytes(bytes)
        } catch {
            throw TLSFileError("TLS \(role) file \(path): not a PEM certificate (\(error))")
        }
        guard !certificates.isEmpty else {
            throw TLSFileError("TLS \(role) file \(path): no PEM certificate in it")
        }
        return certificates
    }

    /// The private key in `bytes` (PEM, unencrypted).
    static func privateKey(_ bytes: [UInt8], path: String) throws(TLSFileError) -> NIOSSLPrivateKey {
        do {
            return try NIOSSLPrivateKey(bytes: bytes, format: .pem)
        } catch {
            throw TLSFileError("TLS private key file \(path): not an unencrypted PEM private key (\(error))")
        }
    }

    /// Throws unless `certificate` is valid at `now` (seconds since the epoch).
    static func checkValidity(_ certificate: NIOSSLCertificate, path: String, now: Int) throws(TLSFileError) {
        if Int(certificate.notValidAfter) < now {
            throw TLSFileError(
                "TLS certificate file \(path): the certificate expired at \(isoDate(certificate.notValidAfter))")
        }
        if Int(certificate.notValidBefore) > now {
            throw TLSFileError(
                "TLS certificate file \(path): the certificate is not valid before \(isoDate(certificate.notValidBefore))"
            )
        }
    }

    /// The subject's common name, or `nil` when it has none.
    static func commonName(_ certificate: NIOSSLCertificate) -> String? {
        certificate.subjectName.first { $0.type == .commonName }?.value
    }

    /// `seconds` since the epoch as `2026-01-31T12:00:00Z`.
    static func isoDate(_ seconds: time_t) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    /// Lower-case hex, for serial numbers.
    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { byte in
            let digits = String(byte, radix: 16)
            return byte < 16 ? "0" + digits : digits
        }.joined()
    }
}
