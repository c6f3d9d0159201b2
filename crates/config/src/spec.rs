//! How a setting is described once: [`declare_settings!`] turns one declaration per setting
//! (documentation, key, Rust type, default, flags) into the struct field, its `Default`, its
//! redacting `Debug`, its "at least 1" check and its [`Spec`] (key, type, secret flag,
//! documentation), from which layering, `--help` and the Markdown reference are derived.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::{IntervalUnit, LogFormat, Settings, StoreBackend};

/// Type of a setting's value, used to check and parse values before merging.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Any string (also paths and optional strings).
    Str,
    /// `true` or `false`.
    Bool,
    /// Non-negative integer up to the given maximum.
    UInt(u64),
    /// One of the given strings.
    Enum(&'static [&'static str]),
}

impl Kind {
    /// Human description for `--help` and errors.
    pub(crate) fn describe(self) -> String {
        match self {
            Kind::Str => "a string".to_owned(),
            Kind::Bool => "a boolean (true or false)".to_owned(),
            Kind::UInt(max) if max == u64::from(u32::MAX) => {
                format!("an integer from 0 to {max}")
            }
            Kind::UInt(_) => "a non-negative integer".to_owned(),
            Kind::Enum(names) => format!("one of {}", names.join(", ")),
        }
    }
}

/// Largest value of a `u32` setting.
const U32: Kind = Kind::UInt(u32::MAX as u64);
/// Largest value of a `u64` or `usize` setting that TOML can hold.
const U64: Kind = Kind::UInt(i64::MAX as u64);

/// A Rust type a setting can have, and the [`Kind`] its values are checked against.
pub(crate) trait SettingValue {
    /// Values accepted for a setting of this type.
    const KIND: Kind;
}

impl SettingValue for String {
    const KIND: Kind = Kind::Str;
}
impl SettingValue for Option<String> {
    const KIND: Kind = Kind::Str;
}
impl SettingValue for PathBuf {
    const KIND: Kind = Kind::Str;
}
impl SettingValue for bool {
    const KIND: Kind = Kind::Bool;
}
impl SettingValue for u32 {
    const KIND: Kind = U32;
}
impl SettingValue for u64 {
    const KIND: Kind = U64;
}
impl SettingValue for usize {
    const KIND: Kind = U64;
}
impl SettingValue for StoreBackend {
    const KIND: Kind = Kind::Enum(&["sqlite", "postgres"]);
}
impl SettingValue for LogFormat {
    const KIND: Kind = Kind::Enum(&["text", "json"]);
}
impl SettingValue for IntervalUnit {
    const KIND: Kind = Kind::Enum(&["milliseconds", "seconds"]);
}

/// An integer setting, as a count for the "at least 1" check.
pub(crate) trait Count {
    /// The value as a `u64`.
    fn count(&self) -> u64;
}
impl Count for u32 {
    fn count(&self) -> u64 {
        u64::from(*self)
    }
}
impl Count for u64 {
    fn count(&self) -> u64 {
        *self
    }
}
impl Count for usize {
    fn count(&self) -> u64 {
        *self as u64
    }
}

/// One setting: dotted key, type, secrecy and documentation.
#[derive(Debug)]
pub(crate) struct Spec {
    /// Dotted key (`subscriptions.interval_unit`).
    pub(crate) key: &'static str,
    /// Accepted values.
    pub(crate) kind: Kind,
    /// Never shown: not in `Debug`, errors or logs.
    pub(crate) secret: bool,
    /// 0 is refused by validation.
    pub(crate) at_least_one: bool,
    /// Documentation, one source line per element (the field's doc comment).
    pub(crate) doc: &'static [&'static str],
}

impl Spec {
    /// The documentation as one paragraph.
    pub(crate) fn text(&self) -> String {
        join_doc(self.doc)
    }

    /// The accepted values, as `--help` and the reference describe them.
    pub(crate) fn describe_values(&self) -> String {
        match (self.kind, self.at_least_one) {
            (Kind::UInt(max), true) if max == u64::from(u32::MAX) => {
                format!("an integer from 1 to {max}")
            }
            (Kind::UInt(_), true) => "a positive integer".to_owned(),
            (kind, _) => kind.describe(),
        }
    }
}

/// Doc-comment lines joined into one paragraph.
pub(crate) fn join_doc(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A field of a settings struct: a setting, or a section (`[subscriptions]`) of settings.
pub(crate) enum Entry {
    /// A setting.
    Setting(Spec),
    /// A table of settings: its key, documentation and entries.
    Section {
        /// Key of the table (`subscriptions`).
        key: &'static str,
        /// Documentation of the section.
        doc: &'static [&'static str],
        /// Its settings.
        entries: &'static [Entry],
    },
}

/// Every setting, in declaration order (the order of `--help` and the reference).
pub(crate) fn specs() -> &'static [&'static Spec] {
    static SPECS: OnceLock<Vec<&'static Spec>> = OnceLock::new();
    SPECS.get_or_init(|| {
        fn flatten(entries: &'static [Entry], out: &mut Vec<&'static Spec>) {
            for e in entries {
                match e {
                    Entry::Setting(s) => out.push(s),
                    Entry::Section { entries, .. } => flatten(entries, out),
                }
            }
        }
        let mut out = Vec::new();
        flatten(Settings::ENTRIES, &mut out);
        out
    })
}

/// Looks up the spec of a dotted key.
pub(crate) fn find_spec(key: &str) -> Option<&'static Spec> {
    specs().iter().copied().find(|s| s.key == key)
}

/// Whether `prefix` names a table of settings (e.g. `subscriptions`).
pub(crate) fn is_section(prefix: &str) -> bool {
    specs().iter().any(|s| {
        s.key
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// Whether the flags of a setting hold `secret`.
macro_rules! setting_is_secret {
    ([]) => {
        false
    };
    ([secret $($rest:tt)*]) => {
        true
    };
    ([$other:tt $($rest:tt)*]) => {
        setting_is_secret!([$($rest)*])
    };
}

/// Whether the flags of a setting hold `at_least_one`.
macro_rules! setting_at_least_one {
    ([]) => {
        false
    };
    ([at_least_one $($rest:tt)*]) => {
        true
    };
    ([$other:tt $($rest:tt)*]) => {
        setting_at_least_one!([$($rest)*])
    };
}

/// What `Debug` shows of a setting: the value, a placeholder for a `secret`, or the value
/// passed through the redactor of `secret(redactor)`.
macro_rules! setting_debug {
    ([], $v:expr) => {
        &$v
    };
    ([secret ($redact:path) $($rest:tt)*], $v:expr) => {
        &$v.as_deref().map($redact)
    };
    ([secret $($rest:tt)*], $v:expr) => {
        &$v.as_ref().map(|_| $crate::redact::Redacted)
    };
    ([$other:tt $($rest:tt)*], $v:expr) => {
        setting_debug!([$($rest)*], $v)
    };
}

/// The "at least 1" check of a setting (or of every setting of a section).
macro_rules! setting_check {
    ([], $key:expr, $v:expr) => {};
    ([at_least_one $($rest:tt)*], $key:expr, $v:expr) => {
        if $crate::spec::Count::count(&$v) == 0 {
            return Err($crate::validate::invalid($key, "must be at least 1"));
        }
    };
    ([section $($rest:tt)*], $key:expr, $v:expr) => {
        $v.check_at_least_one()?;
    };
    ([$other:tt $($rest:tt)*], $key:expr, $v:expr) => {
        setting_check!([$($rest)*], $key, $v)
    };
}

/// The [`Entry`] of a field: a section when the flags hold `section`, else a setting.
macro_rules! setting_entry {
    ([section $($rest:tt)*] [$($all:tt)*], $key:expr, $doc:expr, $ty:ty) => {
        $crate::spec::Entry::Section {
            key: $key,
            doc: $doc,
            entries: <$ty>::ENTRIES,
        }
    };
    ([$other:tt $($rest:tt)*] [$($all:tt)*], $key:expr, $doc:expr, $ty:ty) => {
        setting_entry!([$($rest)*] [$($all)*], $key, $doc, $ty)
    };
    ([] [$($all:tt)*], $key:expr, $doc:expr, $ty:ty) => {
        $crate::spec::Entry::Setting($crate::spec::Spec {
            key: $key,
            kind: <$ty as $crate::spec::SettingValue>::KIND,
            secret: setting_is_secret!([$($all)*]),
            at_least_one: setting_at_least_one!([$($all)*]),
            doc: $doc,
        })
    };
}

/// Declares a settings struct, one entry per setting:
///
/// ```text
/// /// Documentation (rustdoc, `--help` and docs/settings.md).
/// key: Type = default_expression, flag, flag;
/// ```
///
/// Flags: `secret` (never shown), `secret(redactor)` (shown through `redactor(&str) ->
/// String`), `at_least_one` (0 is refused by validation), `section` (the field is a table of
/// settings declared with this macro, its keys prefixed with the field name). Generates the
/// struct, `Default`, a `Debug` that honours `secret`, `ENTRIES` (the specs) and
/// `check_at_least_one`. `$prefix` is prepended to every key (`"subscriptions."`).
macro_rules! declare_settings {
    (
        $prefix:literal;
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $field:ident : $ty:ty = $default:expr $(, $flag:ident $(($arg:path))?)*;
            )*
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $(
                $(#[doc = $doc])*
                pub $field: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    $($field: $default,)*
                }
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    $(.field(
                        stringify!($field),
                        setting_debug!([$($flag $(($arg))?)*], self.$field),
                    ))*
                    .finish()
            }
        }

        impl $name {
            /// The settings of this struct, in declaration order.
            pub(crate) const ENTRIES: &'static [$crate::spec::Entry] = &[
                $(setting_entry!(
                    [$($flag $(($arg))?)*] [$($flag $(($arg))?)*],
                    concat!($prefix, stringify!($field)),
                    &[$($doc),*],
                    $ty
                ),)*
            ];

            /// Refuses 0 in every `at_least_one` setting: it would reject everything or make
            /// a timer spin (tokio panics on a zero interval), never what anyone means.
            pub(crate) fn check_at_least_one(&self) -> Result<(), $crate::ConfigError> {
                $(setting_check!(
                    [$($flag $(($arg))?)*],
                    concat!($prefix, stringify!($field)),
                    self.$field
                );)*
                Ok(())
            }
        }
    };
}
