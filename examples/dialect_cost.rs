//! What detecting a table file's dialect costs (bench/dialects.sh).
//!
//! ```text
//! dialect_cost korean ROWS UTF8_FILE CP949_FILE
//! dialect_cost parse FILE
//! ```
//!
//! `korean`: writes the same ROWS rows of Korean names and cities
//! (semicolon-separated, about 32 bytes a row in CP949) as UTF-8 and as
//! CP949. `parse`: reads FILE as csvd loads a table file, once with every
//! part of its dialect detected and once with every part declared (the
//! dialect detection found), best of five each, and prints `key value`
//! lines: the seconds of each and what detection adds, in per cent.

use std::time::{Duration, Instant};

use csvd::store::dialect::Declared;
use csvd::store::{parse_csv, parse_declared};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["korean", rows, utf8, cp949] => korean(rows.parse().expect("ROWS"), utf8, cp949),
        ["parse", file] => parse(file),
        _ => {
            eprintln!("usage: dialect_cost korean ROWS UTF8_FILE CP949_FILE | parse FILE");
            std::process::exit(2);
        }
    }
}

fn korean(rows: usize, utf8: &str, cp949: &str) {
    let family = ["김", "이", "박", "최", "정", "강", "조", "윤"];
    let given = [
        "민준", "서연", "지호", "하은", "도윤", "서윤", "예준", "지우",
    ];
    let cities = [
        "서울특별시",
        "부산광역시",
        "대구광역시",
        "인천광역시",
        "광주광역시",
    ];
    let mut text = String::from("번호;이름;도시;점수\r\n");
    for i in 0..rows {
        text.push_str(&format!(
            "{};{}{};{};{},{}\r\n",
            i + 1,
            family[i % family.len()],
            given[(i / 8) % given.len()],
            cities[i % cities.len()],
            i % 100,
            i % 10
        ));
    }
    std::fs::write(utf8, &text).expect("write the UTF-8 file");
    let (bytes, _, errors) = encoding_rs::EUC_KR.encode(&text);
    assert!(!errors);
    std::fs::write(cp949, &bytes).expect("write the CP949 file");
}

fn best_of_five(mut run: impl FnMut()) -> Duration {
    (0..5)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn parse(file: &str) {
    let bytes = std::fs::read(file).expect("read the file");
    let (_, rows, layout) = parse_csv(&bytes).expect("the file reads");
    let declared = Declared {
        delimiter: Some(layout.delimiter),
        quote: Some(layout.quote),
        encoding: Some(layout.encoding),
        header: Some(layout.header),
    };
    let detected = best_of_five(|| {
        parse_csv(&bytes).expect("the file reads");
    });
    let given = best_of_five(|| {
        parse_declared(&bytes, declared).expect("the file reads");
    });
    println!("rows {}", rows.len());
    println!("encoding {}", layout.encoding.name());
    println!("detected_s {:.3}", detected.as_secs_f64());
    println!("declared_s {:.3}", given.as_secs_f64());
    println!(
        "detection_pct {:.1}",
        (detected.as_secs_f64() / given.as_secs_f64() - 1.0) * 100.0
    );
}
