internal import CPostgres

/// Statement parameters as libpq takes them. `.int`, `.bool` and `.bytes` go in binary with their
/// type (int8, bool, bytea); `.text` goes as text with type 0, so the server infers the type from
/// the context (a text, jsonb, timestamptz or even bigint column); `.null` is NULL with type 0.
/// So `$1` works against a bigint column with `.int`, a text column with `.text`, a bytea column
/// with `.bytes` and a boolean column with `.bool`.
struct Parameters {
    /// Every value's bytes back to back (text NUL-terminated, as libpq reads text parameters).
    private var bytes: [UInt8] = []
    private var offsets: [Int] = []
    private var lengths: [Int32] = []
    private var formats: [Int32] = []
    private var types: [Oid] = []

    init(_ values: [PostgresValue]) throws(PostgresError) {
        guard values.count <= 65_535 else {
            throw PostgresError(kind: .query, message: "a statement takes at most 65535 parameters, not \(values.count)")
        }
        for (index, value) in values.enumerated() {
            switch value {
            case .null:
                add(offset: -1, length: 0, format: 0, type: 0)
            case .int(let integer):
                add(offset: bytes.count, length: 8, format: 1, type: TypeOID.int8)
                BinaryFormat.append(integer, to: &bytes)
            case .bool(let flag):
                add(offset: bytes.count, length: 1, format: 1, type: TypeOID.bool)
                bytes.append(flag ? 1 : 0)
            case .bytes(let data):
                guard data.count <= Int32.max else {
                    throw PostgresError(kind: .query, message: "parameter $\(index + 1) is larger than 2 GiB")
                }
                add(offset: bytes.count, length: Int32(data.count), format: 1, type: TypeOID.bytea)
                bytes.append(contentsOf: data)
            case .text(let text):
                if text.utf8.contains(0) {
                    throw PostgresError(
                        kind: .query, message: "parameter $\(index + 1) contains a NUL character, which PostgreSQL text cannot hold")
                }
                add(offset: bytes.count, length: 0, format: 0, type: 0)
                bytes.append(contentsOf: text.utf8)
                bytes.append(0)
            }
        }
        bytes.append(0)  // never empty, so the base address is never nil
    }

    /// Each parameter's type OID (0: inferred by the server).
    var typeOIDs: [UInt32] { types.map { UInt32($0) } }

    private mutating func add(offset: Int, length: Int32, format: Int32, type: Oid) {
        offsets.append(offset)
        lengths.append(length)
        formats.append(format)
        types.append(type)
    }

    func withPointers<R>(
        _ body: (
            Int32, UnsafePointer<Oid>?, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?
        ) -> R
    ) -> R {
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
            let pointers: [UnsafePointer<CChar>?] = offsets.map { $0 < 0 ? nil : base + $0 }
            return pointers.withUnsafeBufferPointer { values in
                types.withUnsafeBufferPointer { types in
                    lengths.withUnsafeBufferPointer { lengths in
                        formats.withUnsafeBufferPointer { formats in
                            body(Int32(offsets.count), types.baseAddress, values.baseAddress, lengths.baseAddress, formats.baseAddress)
                        }
                    }
                }
            }
        }
    }
}
