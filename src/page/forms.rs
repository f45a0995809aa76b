//! Form pieces the pages share: a labelled field for a column's value, the
//! fields that add a new column, and the confirmation that guards a delete.
//!
//! Controls that only the page's script can carry out (PATCH, PUT and
//! DELETE, which a plain form cannot send) are drawn disabled and marked
//! `data-script`; the script enables them. Without it a page still reads.

use maud::{html, Markup};

/// Values longer than this (in characters) are edited in a text area.
const LONG_VALUE: usize = 80;

/// A labelled control for one column's value: a text area for a value of
/// several lines or a long one, else a line. `id` must be unique on the page.
pub fn field(id: &str, column: &str, value: &str, readonly: bool) -> Markup {
    let long = value.contains(['\n', '\r']) || value.chars().count() > LONG_VALUE;
    html! {
        div.field {
            label for=(id) { (column) }
            @if long {
                // The parser drops one newline right after the opening tag;
                // this one, so a value's own first newline survives.
                textarea id=(id) name=(column) rows="4" readonly[readonly] { "\n" (value) }
            } @else {
                input id=(id) type="text" name=(column) value=(value) readonly[readonly];
            }
        }
    }
}

/// Fields for a column the table does not have yet: a name and a value.
/// They have no `name`, so a form never sends them as they are; the script
/// shows them and turns each pair into a field named by the new column.
pub fn new_columns(prefix: &str) -> Markup {
    html! {
        fieldset.new-columns data-new-columns hidden {
            legend { "New column" }
            div.pair data-pair {
                div.field {
                    label for=(format!("{prefix}-name-0")) { "Column name" }
                    input id=(format!("{prefix}-name-0")) type="text" data-new-name
                        autocomplete="off" spellcheck="false";
                }
                div.field {
                    label for=(format!("{prefix}-value-0")) { "Value" }
                    input id=(format!("{prefix}-value-0")) type="text" data-new-value;
                }
            }
            button.quiet type="button" data-add-pair { "Another new column" }
        }
    }
}

/// What a guarded delete sends and what follows it.
pub struct Delete<'a> {
    /// What the closed control says (`Delete this row…`).
    pub summary: &'a str,
    /// What will happen, said before it does.
    pub warning: &'a str,
    /// The button that does it.
    pub button: &'a str,
    /// The resource to `DELETE`.
    pub url: &'a str,
    /// Its entity tag, sent as `If-Match`.
    pub tag: &'a str,
    /// Where to go once it is gone, and what to tell there.
    pub then: &'a str,
    pub done: &'a str,
}

/// A delete behind a second step: it opens to say what will be lost, and
/// only the button inside sends the request.
pub fn delete(delete: &Delete) -> Markup {
    html! {
        details.danger {
            summary { (delete.summary) }
            div.confirm {
                p { (delete.warning) }
                button.danger type="button" disabled data-script
                    data-delete=(delete.url) data-tag=(delete.tag)
                    data-then=(delete.then) data-done=(delete.done) { (delete.button) }
                p.status role="status" {}
            }
        }
    }
}

/// The form that replaces every row of a table with a CSV file's: `PUT`
/// of the file as it is, with `If-Match: tag` (`*` for a table whose file
/// cannot be read, which has no tag). Folded away unless `open`.
pub fn replace_rows(path: &str, name: &str, tag: &str, open: bool) -> Markup {
    html! {
        details.tool open[open] {
            summary { "Replace all rows with a CSV file…" }
            form data-upload data-url=(path) data-tag=(tag) {
                p { "The file's first line names the columns. Every row of "
                    (name) " is replaced by the file's rows." }
                div.field {
                    label for="replace-file" { "CSV file" }
                    input #replace-file type="file" name="file" accept=".csv,.tsv,.txt,text/csv,text/tab-separated-values" required;
                }
                (upload_preview("replace"))
                button type="submit" disabled data-script { "Replace the rows" }
                p.status role="status" {}
            }
        }
    }
}

/// What csvd detects in a chosen file, shown before it is uploaded (the
/// script fills it from `POST /_detect`), and the controls that tell it
/// otherwise: delimiter, quote, encoding, header. Hidden until a file is
/// chosen, and always without the script. `id` prefixes the controls' ids.
pub fn upload_preview(id: &str) -> Markup {
    let control = |name: &str| format!("{id}-{name}");
    html! {
        div.preview data-preview hidden {
            p.detected data-detected role="status" {}
            div.choices {
                div.field {
                    label for=(control("delimiter")) { "Delimiter" }
                    select id=(control("delimiter")) name="delimiter" {
                        option value="" { "as detected" }
                        option value="," { "commas ," }
                        option value=";" { "semicolons ;" }
                        option value="tab" { "tabs" }
                        option value="|" { "bars |" }
                    }
                }
                div.field {
                    label for=(control("quote")) { "Quote" }
                    select id=(control("quote")) name="quote" {
                        option value="" { "as detected" }
                        option value="\"" { "double \"" }
                        option value="'" { "single '" }
                    }
                }
                div.field {
                    label for=(control("charset")) { "Encoding" }
                    select id=(control("charset")) name="charset" {
                        option value="" { "as detected" }
                        @for (value, label) in ENCODINGS {
                            option value=(value) { (label) }
                        }
                    }
                }
                div.field {
                    label for=(control("header")) { "First line" }
                    select id=(control("header")) name="header" {
                        option value="" { "as detected" }
                        option value="1" { "names the columns" }
                        option value="0" { "is a row (no header)" }
                    }
                }
            }
            div.scroll {
                table.sample data-sample {}
            }
        }
    }
}

/// The encodings the upload form offers (any other is detected).
const ENCODINGS: [(&str, &str); 11] = [
    ("UTF-8", "UTF-8"),
    ("EUC-KR", "Korean (CP949, EUC-KR)"),
    ("Shift_JIS", "Japanese (Shift-JIS)"),
    ("EUC-JP", "Japanese (EUC-JP)"),
    ("GBK", "Chinese, simplified (GBK)"),
    ("Big5", "Chinese, traditional (Big5)"),
    ("windows-1252", "Western (Windows-1252)"),
    ("windows-1251", "Cyrillic (Windows-1251)"),
    ("ISO-8859-2", "Central European (ISO-8859-2)"),
    ("UTF-16LE", "UTF-16 LE"),
    ("UTF-16BE", "UTF-16 BE"),
];

/// What a page says when its script cannot run.
pub fn needs_script(what: &str) -> Markup {
    html! {
        noscript {
            p.note { (what) " need JavaScript; reading, searching and adding rows do not." }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_escape_and_keep_first_newlines() {
        let line = field("f-0", "<name>", "\"kim\" & <b>", false).into_string();
        assert!(
            line.contains("value=\"&quot;kim&quot; &amp; &lt;b&gt;\""),
            "{line}"
        );
        assert!(
            line.contains("<label for=\"f-0\">&lt;name&gt;</label>"),
            "{line}"
        );
        let area = field("f-1", "note", "\nsecond", true).into_string();
        assert!(area.contains("readonly>\n\nsecond</textarea>"), "{area}");
    }
}
