//! YAML parsing for untrusted documents (schemas, manifests, specs).
//!
//! `yaml_serde` refuses alias expansion past a repetition limit (the "billion laughs" document)
//! and nesting past a recursion limit. A typed parse skips the parts of a document it has no
//! field for, bomb included, so every document is first expanded whole: a document that only
//! explodes in a part paved ignores is still refused (and never stored, nor served to clients).
//! The whole document is also held to plain data: a key given twice (which value would count?)
//! and any application tag (`!Ref`, `!Sub`: none belongs in a spec, schema or manifest) are
//! refused; YAML's own `!!` tags read as the plain text they tag.

use serde::de::DeserializeOwned;
use yaml_serde::Value as Yaml;

pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let document: Yaml = yaml_serde::from_str(text).map_err(|e| e.to_string())?;
    untagged(&document)?;
    yaml_serde::from_str(text).map_err(|e| e.to_string())
}

fn untagged(value: &Yaml) -> Result<(), String> {
    match value {
        Yaml::Tagged(tagged) => Err(format!(
            "the tag {} has no place here: give plain values",
            tagged.tag
        )),
        Yaml::Sequence(items) => items.iter().try_for_each(untagged),
        Yaml::Mapping(map) => map
            .iter()
            .try_for_each(|(k, v)| untagged(k).and_then(|()| untagged(v))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alias_bomb_is_refused_quickly() {
        let mut doc = String::from("a: &a [x,x,x,x,x,x,x,x,x]\n");
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        for pair in names.windows(2) {
            let refs = vec![format!("*{}", pair[0]); 9].join(",");
            doc.push_str(&format!("{}: &{} [{refs}]\n", pair[1], pair[1]));
        }
        let err = from_str::<serde_json::Value>(&doc).unwrap_err();
        assert!(err.contains("repetition limit"), "{err}");
    }

    #[test]
    fn a_bomb_in_an_ignored_member_is_refused_too() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Only {
            wanted: u8,
        }
        let mut doc = String::from("wanted: 1\na: &a [x,x,x,x,x,x,x,x,x]\n");
        for pair in ["a", "b", "c", "d", "e", "f", "g", "h", "i"].windows(2) {
            let refs = vec![format!("*{}", pair[0]); 9].join(",");
            doc.push_str(&format!("{}: &{} [{refs}]\n", pair[1], pair[1]));
        }
        let err = from_str::<Only>(&doc).unwrap_err();
        assert!(err.contains("repetition limit"), "{err}");
    }

    #[test]
    fn duplicate_keys_and_tags_are_refused() {
        let err = from_str::<serde_json::Value>("spec:\n  a: 1\n  a: 2\n").unwrap_err();
        assert!(err.contains("duplicate"), "{err}");
        for doc in ["a: [!Ref X]\n", "!custom {a: 1}\n", "a: !Sub '${X}'\n"] {
            let err = from_str::<serde_json::Value>(doc).unwrap_err();
            assert!(err.contains("tag"), "{doc}: {err}");
        }
        // YAML's own `!!binary` is read as the plain text it tags: nothing is decoded.
        let read: serde_json::Value = from_str("a: !!binary aGVsbG8=\n").unwrap();
        assert_eq!(read["a"], "aGVsbG8=");
        assert!(from_str::<serde_json::Value>("a: 'x'\nb: [1, 2]\n").is_ok());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let doc = "[".repeat(10_000) + &"]".repeat(10_000);
        let err = from_str::<serde_json::Value>(&doc).unwrap_err();
        assert!(err.contains("recursion limit"), "{err}");
    }
}
