public import Spec
import Crypto

/// A digest of a resource's stored attributes: what `orgctl_resources.digest` records at apply,
/// compared later to detect changes made outside orgctl.
///
/// The input is the kind, then every non-null attribute in name order, each as
/// `name 0x00 tag value 0x00`; secrets contribute their fingerprint and documents their SHA-256.
public enum ResourceDigest {
    public static func of(_ resource: Resource) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(128)
        bytes += resource.kind.rawValue.utf8
        bytes.append(0)
        for attribute in resource.attributes {
            switch attribute.value {
            case .null: continue
            case .bool(let b): append(attribute.name, "b", b ? "1" : "0", to: &bytes)
            case .int(let i): append(attribute.name, "i", String(i), to: &bytes)
            case .string(let s): append(attribute.name, "s", s, to: &bytes)
            case .list(let l): append(attribute.name, "l", l.joined(separator: "\u{1F}"), to: &bytes)
            case .secret(let fingerprint): append(attribute.name, "x", fingerprint, to: &bytes)
            case .document(let sha256, _): append(attribute.name, "d", sha256, to: &bytes)
            }
        }
        return Hex.encode(SHA256.hash(bytes))
    }

    private static func append(_ name: String, _ tag: Character, _ value: String, to bytes: inout [UInt8]) {
        bytes += name.utf8
        bytes.append(0)
        bytes.append(tag.asciiValue ?? 0)
        bytes += value.utf8
        bytes.append(0)
    }
}
