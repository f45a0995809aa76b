//! Splitting a shell line into words the way a POSIX shell would, so that
//! a request typed in `csvd shell` means what it means on the command
//! line: `'single'` quotes are literal, `"double"` quotes honour `\"` and
//! `\\`, and a backslash outside quotes takes the next character as is.

/// The words of `line`, or why it cannot be split.
pub fn split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("a ' quote is not closed".to_string()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("a \" quote is not closed".to_string()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("a \" quote is not closed".to_string()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => word.push('\\'),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        split(line).expect(line)
    }

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(
            words("  post /people  name=kim "),
            ["post", "/people", "name=kim"]
        );
        assert_eq!(
            words("post /p 'name=kim lee' \"city=New York\""),
            ["post", "/p", "name=kim lee", "city=New York"]
        );
        assert_eq!(
            words(r#"x "a\"b" 'c\d' e\ f"#),
            ["x", "a\"b", r"c\d", "e f"]
        );
        assert_eq!(words("empty=''"), ["empty="]);
        assert_eq!(words("''"), [""]);
        assert!(words("").is_empty());
    }

    #[test]
    fn unclosed_quotes_are_reported() {
        assert!(split("name='kim").is_err());
        assert!(split("name=\"kim").is_err());
    }
}
