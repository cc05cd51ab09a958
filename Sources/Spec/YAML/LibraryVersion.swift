internal import CYAML

/// The libyaml orgctl runs with (`orgctl version`).
public enum YAMLLibrary {
    /// The version of the loaded libyaml, e.g. `0.2.5`.
    public static var version: String { String(cString: yaml_get_version_string()) }
}
