//! YAML parsing for untrusted documents (schemas, manifests, specs).
//!
//! `yaml_serde` refuses alias expansion past a repetition limit (the "billion laughs" document)
//! and nesting past a recursion limit. A typed parse skips the parts of a document it has no
//! field for, bomb included, so every document is first expanded whole: a document that only
//! explodes in a part paved ignores is still refused (and never stored, nor served to clients).

use serde::de::DeserializeOwned;

pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    yaml_serde::from_str::<serde_json::Value>(text).map_err(|e| e.to_string())?;
    yaml_serde::from_str(text).map_err(|e| e.to_string())
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
    fn deep_nesting_is_refused() {
        let doc = "[".repeat(10_000) + &"]".repeat(10_000);
        let err = from_str::<serde_json::Value>(&doc).unwrap_err();
        assert!(err.contains("recursion limit"), "{err}");
    }
}
