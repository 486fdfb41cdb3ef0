//! A small XML DOM for request bodies (they are small: configurations, batch deletes)
//! and a writer for responses.

use quick_xml::events::Event;
use quick_xml::Reader;

#[derive(Debug, Default, Clone)]
pub struct Element {
    /// Local name, without namespace prefix.
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name || k.rsplit(':').next() == Some(name))
            .map(|(_, v)| v.as_str())
    }
}

fn local(name: &[u8]) -> String {
    let s = String::from_utf8_lossy(name);
    match s.rsplit_once(':') {
        Some((_, l)) => l.to_string(),
        None => s.into_owned(),
    }
}

/// Parses a document into its root element. Errors are human-readable.
pub fn parse(body: &[u8]) -> Result<Element, String> {
    let mut reader = Reader::from_reader(body);
    let mut stack: Vec<Element> = Vec::new();
    let mut buf = Vec::new();
    loop {
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("at byte {}: {e}", reader.buffer_position()))?;
        match ev {
            Event::Start(s) => {
                let mut el = Element {
                    name: local(s.name().as_ref()),
                    ..Default::default()
                };
                for a in s.attributes().flatten() {
                    let v = a.unescape_value().map_err(|e| e.to_string())?;
                    el.attrs
                        .push((String::from_utf8_lossy(a.key.as_ref()).into(), v.into()));
                }
                stack.push(el);
            }
            Event::Empty(s) => {
                let mut el = Element {
                    name: local(s.name().as_ref()),
                    ..Default::default()
                };
                for a in s.attributes().flatten() {
                    let v = a.unescape_value().map_err(|e| e.to_string())?;
                    el.attrs
                        .push((String::from_utf8_lossy(a.key.as_ref()).into(), v.into()));
                }
                match stack.last_mut() {
                    Some(p) => p.children.push(el),
                    None => return Ok(el),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    let s = t.unescape().map_err(|e| e.to_string())?;
                    top.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or("unbalanced end tag")?;
                match stack.last_mut() {
                    Some(p) => p.children.push(el),
                    None => return Ok(el),
                }
            }
            Event::Eof => return Err("unexpected end of document".into()),
            _ => {}
        }
        buf.clear();
    }
}

/// Escapes text for element content and attribute values.
pub fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// Writes `<name>text</name>`.
pub fn leaf(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    escape(text, out);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_with_namespaces_and_entities() {
        let doc = br#"<?xml version="1.0"?><Delete xmlns="http://s3"><Object><Key>a&amp;b</Key></Object><Object><Key>c</Key></Object><Quiet>true</Quiet></Delete>"#;
        let el = parse(doc).unwrap();
        assert_eq!(el.name, "Delete");
        let keys: Vec<_> = el
            .children_named("Object")
            .map(|o| o.child("Key").unwrap().text.clone())
            .collect();
        assert_eq!(keys, vec!["a&b", "c"]);
        assert_eq!(el.child("Quiet").unwrap().text, "true");
    }

    #[test]
    fn rejects_truncated() {
        assert!(parse(b"<a><b>").is_err());
        assert!(parse(b"<a></b>").is_err());
        assert!(parse(b"").is_err());
    }

    #[test]
    fn escapes() {
        let mut s = String::new();
        leaf(&mut s, "K", "<&>\"'");
        assert_eq!(s, "<K>&lt;&amp;&gt;&quot;&apos;</K>");
    }
}
