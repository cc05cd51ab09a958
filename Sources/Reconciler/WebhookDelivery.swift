import Crypto
import Foundation
public import StateStore

/// The rules of a webhook delivery, pure (docs/webhooks.md): Standard Webhooks signatures, the
/// retry schedule, and what each answer means. The clock and the jitter's random number come in
/// as arguments.
public enum WebhookDelivery {
    /// When the webhook sets no `timeout`.
    public static let defaultTimeoutSeconds = 15
    /// When the webhook sets no `maxRetries`.
    public static let defaultMaxRetries = 5

    /// Seconds before retry n (n = 1, 2, …; the last repeats): the Standard Webhooks example
    /// schedule after the first attempt — 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
    public static let schedule: [Int64] = [5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 86_400]

    /// A `Retry-After` longer than this is cut to it.
    public static let maxRetryAfter: Int64 = 86_400

    /// The delay before retry `retry` (1-based), with up to 20% added jitter: `random` is in [0, 1).
    public static func delay(retry: Int, random: Double) -> Int64 {
        let base = schedule[min(max(retry, 1), schedule.count) - 1]
        return base + Int64((Double(base) * 0.2 * min(max(random, 0), 1)).rounded(.down))
    }

    /// The HMAC keys of a webhook secret. A value of `whsec_`-prefixed base64 keys (the Standard
    /// Webhooks form) is decoded, as every Standard Webhooks library does; several such keys
    /// separated by spaces (a rotation: new and old) each sign, and the header carries every
    /// signature. Any other value is used as it is, as bytes.
    public static func signingKeys(secret: [UInt8]) -> [[UInt8]] {
        let text = String(decoding: secret, as: UTF8.self)
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        guard !parts.isEmpty, parts.allSatisfy({ $0.hasPrefix("whsec_") }) else { return [secret] }
        var keys: [[UInt8]] = []
        for part in parts {
            var encoded = String(part.dropFirst("whsec_".count))
            while encoded.count % 4 != 0 { encoded += "=" }
            guard let data = Data(base64Encoded: encoded), !data.isEmpty else { return [secret] }
            keys.append([UInt8](data))
        }
        return keys
    }

    /// `webhook-signature`: `v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>` for each key, space-separated.
    public static func signature(id: String, timestamp: Int64, body: [UInt8], secret: [UInt8]) -> String {
        let signed = Array("\(id).\(timestamp).".utf8) + body
        return signingKeys(secret: secret).map { key in
            "v1," + Data(HMACSHA256.authenticationCode(for: signed, key: key)).base64EncodedString()
        }.joined(separator: " ")
    }

    /// The headers of a delivery.
    public static func headers(id: String, timestamp: Int64, body: [UInt8], secret: [UInt8]) -> [(name: String, value: String)] {
        [("content-type", "application/json"), ("webhook-id", id), ("webhook-timestamp", String(timestamp)),
         ("webhook-signature", signature(id: id, timestamp: timestamp, body: body, secret: secret))]
    }

    /// What an attempt found.
    public enum Answer: Sendable, Equatable {
        case status(Int, retryAfter: String?)
        /// No HTTP answer: refused by the SSRF rules, resolution, timeout, connection or TLS failure.
        case failure(String)
    }

    /// The event's next state after an attempt that found `answer`, and the error to record (nil on
    /// success). 2xx delivers; 410 dead-letters and disables the endpoint; anything else (3xx
    /// included: redirects are never followed) is retried on the schedule until `maxRetries`
    /// retries were made, then dead-lettered. 429 and 503 wait at least their `Retry-After`.
    public static func outcome(_ answer: Answer, attemptsBefore: Int, maxRetries: Int, now: Int64, random: Double)
        -> (outcome: DeliveryOutcome, error: String?)
    {
        let error: String
        var wait: Int64 = 0
        switch answer {
        case .status(let code, _) where (200..<300).contains(code):
            return (.delivered, nil)
        case .status(410, _):
            return (.dead(disable: "the endpoint answered 410 Gone"), "HTTP 410 Gone: the endpoint is disabled")
        case .status(let code, let retryAfter):
            error = (300..<400).contains(code) ? "HTTP \(code) (a redirect, which is not followed)" : "HTTP \(code)"
            if code == 429 || code == 503, let retryAfter, let seconds = retryAfterSeconds(retryAfter, now: now) { wait = seconds }
        case .failure(let message):
            error = message
        }
        let retry = attemptsBefore + 1
        guard retry <= maxRetries else { return (.dead(disable: nil), error + " (retries used up)") }
        return (.retry(at: now + max(wait, delay(retry: retry, random: random))), error)
    }

    /// `Retry-After` as seconds from `now` (delay-seconds or an HTTP date), capped; nil when unreadable.
    public static func retryAfterSeconds(_ value: String, now: Int64) -> Int64? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if !trimmed.isEmpty, trimmed.count <= 10, trimmed.allSatisfy({ $0.isASCII && $0.isNumber }), let seconds = Int64(trimmed) {
            return min(seconds, maxRetryAfter)
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: trimmed) else { return nil }
        return min(max(0, Int64(date.timeIntervalSince1970) - now), maxRetryAfter)
    }
}
