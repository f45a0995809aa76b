//! Splitting a shell line into words the way a POSIX shell would, so that
//! a request typed in `csvd shell` means what it means on the command
//! line: `'single'` quotes are literal, `"double"` quotes honour `\"` and
//! `\\`, and a backslash outside quotes takes the next character as is.
//!
//! This is the shell's one word splitter: request lines, `:commands`, the
//! body question and Tab completion all read words through it, so a quote
//! or a backslash means the same thing at every prompt.

/// One word of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The text, quotes and escapes resolved.
    pub text: String,
    /// Where the word starts in the line, in bytes (its opening quote
    /// included).
    pub start: usize,
    /// For each character of `text`, whether it was quoted or escaped:
    /// such a character is literal, never a separator of any kind.
    pub literal: Vec<bool>,
}

impl Word {
    /// The characters with their byte offsets in `text` and whether each
    /// is literal.
    pub fn chars(&self) -> impl Iterator<Item = (usize, char, bool)> + '_ {
        self.text
            .char_indices()
            .zip(self.literal.iter().copied())
            .map(|((at, c), literal)| (at, c, literal))
    }
}

/// The words of `line`, or why it cannot be split.
pub fn words(line: &str) -> Result<Vec<Word>, String> {
    let scan = scan(line);
    match scan.open_quote {
        Some(quote) => Err(format!("a {quote} quote is not closed")),
        None => Ok(scan.words),
    }
}

/// The words' texts.
pub fn split(line: &str) -> Result<Vec<String>, String> {
    Ok(words(line)?.into_iter().map(|word| word.text).collect())
}

/// The words of a line still being typed (an open quote is allowed), and
/// whether the last of them is unfinished: the cursor is still in it.
pub fn partial(line: &str) -> (Vec<Word>, bool) {
    let scan = scan(line);
    (scan.words, scan.in_word)
}

struct Scan {
    words: Vec<Word>,
    /// The quote left open at the end of the line.
    open_quote: Option<char>,
    /// The line ends inside a word.
    in_word: bool,
}

fn scan(line: &str) -> Scan {
    let mut words = Vec::new();
    let mut current: Option<Word> = None;
    let mut chars = line.char_indices();
    let mut open_quote = None;
    let push = |current: &mut Option<Word>, at: usize, c: char, literal: bool| {
        let word = current.get_or_insert_with(|| Word {
            text: String::new(),
            start: at,
            literal: Vec::new(),
        });
        word.text.push(c);
        word.literal.push(literal);
    };
    // A quoted empty word (`''`) is a word too.
    let begin = |current: &mut Option<Word>, at: usize| {
        current.get_or_insert_with(|| Word {
            text: String::new(),
            start: at,
            literal: Vec::new(),
        });
    };
    while let Some((at, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(current.take()),
            '\'' => {
                begin(&mut current, at);
                open_quote = Some('\'');
                for (at, c) in chars.by_ref() {
                    if c == '\'' {
                        open_quote = None;
                        break;
                    }
                    push(&mut current, at, c, true);
                }
            }
            '"' => {
                begin(&mut current, at);
                open_quote = Some('"');
                while let Some((at, c)) = chars.next() {
                    match c {
                        '"' => {
                            open_quote = None;
                            break;
                        }
                        '\\' => match chars.next() {
                            Some((_, c @ ('"' | '\\'))) => push(&mut current, at, c, true),
                            Some((next, c)) => {
                                push(&mut current, at, '\\', true);
                                push(&mut current, next, c, true);
                            }
                            None => break,
                        },
                        c => push(&mut current, at, c, true),
                    }
                }
            }
            '\\' => match chars.next() {
                Some((_, c)) => push(&mut current, at, c, true),
                None => push(&mut current, at, '\\', false),
            },
            c => push(&mut current, at, c, false),
        }
    }
    let in_word = current.is_some();
    words.extend(current);
    Scan {
        words,
        open_quote,
        in_word,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<String> {
        split(line).expect(line)
    }

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(
            texts("  post /people  name=kim "),
            ["post", "/people", "name=kim"]
        );
        assert_eq!(
            texts("post /p 'name=kim lee' \"city=New York\""),
            ["post", "/p", "name=kim lee", "city=New York"]
        );
        assert_eq!(
            texts(r#"x "a\"b" 'c\d' e\ f"#),
            ["x", "a\"b", r"c\d", "e f"]
        );
        assert_eq!(texts("empty=''"), ["empty="]);
        assert_eq!(texts("''"), [""]);
        assert_eq!(
            texts(r"Authorization:Bearer\ x"),
            ["Authorization:Bearer x"]
        );
        assert!(texts("").is_empty());
    }

    #[test]
    fn unclosed_quotes_are_reported() {
        assert!(split("name='kim").is_err());
        assert!(split("name=\"kim").is_err());
        assert!(split("name=\"kim\\").is_err());
    }

    #[test]
    fn quoted_and_escaped_characters_are_marked_literal() {
        let words = words(r#"a:'b c' d\:e "f""#).unwrap();
        let literal = |word: &Word| -> String {
            word.chars()
                .map(|(_, _, literal)| if literal { 'q' } else { '.' })
                .collect()
        };
        assert_eq!(words[0].text, "a:b c");
        assert_eq!(literal(&words[0]), "..qqq");
        assert_eq!(literal(&words[1]), ".q.");
        assert_eq!((words[2].text.as_str(), words[2].start), ("f", 13));
    }

    #[test]
    fn a_line_being_typed_may_end_inside_a_word_or_a_quote() {
        let (words, unfinished) = partial("post /people 'name=kim");
        assert!(unfinished);
        assert_eq!(words[2].text, "name=kim");
        assert_eq!(words[2].start, 13);
        let (words, unfinished) = partial("post /people ");
        assert!(!unfinished);
        assert_eq!(words.len(), 2);
    }
}
