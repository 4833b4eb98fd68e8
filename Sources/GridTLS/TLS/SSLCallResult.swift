/// The outcome of one OpenSSL handshake, read, write or shutdown call on an `SSLConnection`,
/// classified with `SSL_get_error`.
enum SSLCallResult: Equatable {
    /// What OpenSSL needs before the call can make progress.
    enum Want: Equatable {
        /// More ciphertext from the peer (SSL_ERROR_WANT_READ): feed the next `channelRead`.
        case read
        /// Room to write ciphertext (SSL_ERROR_WANT_WRITE); memory BIOs always have room, so
        /// this is only ever transient.
        case write
    }

    /// The call succeeded; the associated value is its positive return value (bytes moved for
    /// read and write, 1 for handshake and shutdown).
    case complete(Int)
    /// The call cannot finish yet.
    case incomplete(Want)
    /// The peer sent close_notify (SSL_ERROR_ZERO_RETURN): no more data will arrive.
    case closed
    /// A fatal error; `reason` is OpenSSL's text, e.g. "certificate verify failed: certificate
    /// has expired". The connection must not be used further.
    case failed(reason: String)
}
