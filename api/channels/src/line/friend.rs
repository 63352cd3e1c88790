//! What a business shows customers to add its LINE Official Account as a friend:
//! the friend link, a QR code of it (SVG and PNG) and LINE's "Add friend" button.

use std::fmt;
use std::str::FromStr;

use qrcode::render::svg;
use qrcode::{Color, EcLevel, QrCode};

/// The longest basic ID accepted, not counting the leading `@`.
pub const MAX_BASIC_ID_LENGTH: usize = 32;

/// The largest module size [`qr_png`] draws; larger requests are drawn at this size
/// so that a caller cannot make it allocate an enormous image.
pub const MAX_MODULE_PX: u32 = 100;

/// Modules of light border around the code, as ISO/IEC 18004 asks for a normal QR code.
const QUIET_ZONE_MODULES: usize = 4;

/// Pixels per module in the SVG's own coordinates; the `viewBox` lets it scale freely.
const SVG_MODULE_PX: u32 = 8;

/// Why a basic ID was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FriendError {
    /// The ID did not start with `@`.
    #[error("basic id must start with @")]
    MissingAtSign,
    /// Nothing followed the `@`.
    #[error("basic id is empty after the @")]
    Empty,
    /// More than [`MAX_BASIC_ID_LENGTH`] characters followed the `@`.
    #[error("basic id is {length} characters long after the @, at most {MAX_BASIC_ID_LENGTH} are allowed")]
    TooLong {
        /// How many characters followed the `@`.
        length: usize,
    },
    /// A character other than `a-z`, `0-9`, `.`, `_` or `-` followed the `@`.
    #[error("basic id contains {character:?}, only a-z, 0-9, '.', '_' and '-' are allowed")]
    InvalidCharacter {
        /// The first offending character.
        character: char,
    },
}

/// A LINE Official Account's basic (or premium) ID such as `@123abcde`, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BasicId(String);

impl BasicId {
    /// Parses an ID written as `@` followed by 1 to 32 of `a-z`, `0-9`, `.`, `_`, `-`.
    ///
    /// Upper-case ASCII letters are accepted and lower-cased, since LINE treats IDs
    /// case-insensitively; surrounding whitespace is not trimmed.
    pub fn parse(input: &str) -> Result<Self, FriendError> {
        let name = input.strip_prefix('@').ok_or(FriendError::MissingAtSign)?;
        if name.is_empty() {
            return Err(FriendError::Empty);
        }
        let length = name.chars().count();
        if length > MAX_BASIC_ID_LENGTH {
            return Err(FriendError::TooLong { length });
        }
        let name = name.to_ascii_lowercase();
        if let Some(character) = name.chars().find(|&c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-')) {
            return Err(FriendError::InvalidCharacter { character });
        }
        Ok(Self(format!("@{name}")))
    }

    /// Returns the ID with its leading `@`, lower-cased.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BasicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for BasicId {
    type Err = FriendError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::parse(input)
    }
}

/// The languages LINE draws its "Add friend" button image in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ButtonLanguage {
    /// 友だち追加
    Japanese,
    /// Add friend
    English,
    /// 加入好友
    TraditionalChinese,
    /// เพิ่มเพื่อน
    Thai,
    /// 친구 추가
    Korean,
}

impl ButtonLanguage {
    /// Returns the language code LINE uses in the button image's file name.
    pub fn code(self) -> &'static str {
        match self {
            Self::Japanese => "ja",
            Self::English => "en",
            Self::TraditionalChinese => "zh-Hant",
            Self::Thai => "th",
            Self::Korean => "ko",
        }
    }

    /// Returns the button image's alt text, which says what the image says.
    pub fn alt_text(self) -> &'static str {
        match self {
            Self::Japanese => "友だち追加",
            Self::English => "Add friend",
            Self::TraditionalChinese => "加入好友",
            Self::Thai => "เพิ่มเพื่อน",
            Self::Korean => "친구 추가",
        }
    }
}

/// Returns the link that opens the account's "add friend" screen in LINE,
/// such as `https://line.me/R/ti/p/%40123abcde`.
pub fn friend_link(id: &BasicId) -> String {
    // The only character of a basic ID that needs percent-encoding in a path is the `@`.
    format!("https://line.me/R/ti/p/%40{}", &id.as_str()[1..])
}

/// Returns an SVG document with a QR code of [`friend_link`]: error correction M,
/// a 4-module quiet zone, black on white, a `viewBox` and no external references.
pub fn qr_svg(id: &BasicId) -> String {
    friend_link_qr(id)
        .render::<svg::Color<'_>>()
        .quiet_zone(true)
        .module_dimensions(SVG_MODULE_PX, SVG_MODULE_PX)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build()
}

/// Returns a 1-bit grayscale PNG of the same QR code as [`qr_svg`], `module_px`
/// pixels per module, so `(modules + 8) * module_px` pixels wide and high.
///
/// `module_px` is clamped to `1..=`[`MAX_MODULE_PX`].
pub fn qr_png(id: &BasicId, module_px: u32) -> Vec<u8> {
    let code = friend_link_qr(id);
    let module_px = module_px.clamp(1, MAX_MODULE_PX) as usize;
    let modules = code.width();
    let colors = code.to_colors();
    let side_modules = modules + 2 * QUIET_ZONE_MODULES;
    let side_px = side_modules * module_px;

    // One bit per pixel, most significant bit first, 1 = white; each row starts on a byte.
    let row_bytes = side_px.div_ceil(8);
    let mut pixels = vec![0xff_u8; row_bytes * side_px];
    for (index, _) in colors.iter().enumerate().filter(|(_, color)| **color == Color::Dark) {
        let (module_x, module_y) = (index % modules + QUIET_ZONE_MODULES, index / modules + QUIET_ZONE_MODULES);
        for y in module_y * module_px..(module_y + 1) * module_px {
            for x in module_x * module_px..(module_x + 1) * module_px {
                pixels[y * row_bytes + x / 8] &= !(0x80 >> (x % 8));
            }
        }
    }

    let side_px = u32::try_from(side_px).expect("a clamped qr code image fits in u32 pixels");
    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, side_px, side_px);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    // Writing to a Vec cannot fail, and the header and data sizes agree by construction.
    let mut writer = encoder.write_header().expect("png header is valid");
    writer.write_image_data(&pixels).expect("png data matches the header");
    writer.finish().expect("png is written to memory");
    png_bytes
}

/// Returns the HTML LINE documents for its official "Add friend" button, linking
/// to [`friend_link`], in `language`.
pub fn add_friend_button_html(id: &BasicId, language: ButtonLanguage) -> String {
    format!(
        r#"<a href="{href}"><img src="https://scdn.line-apps.com/n/line_add_friends/btn/{code}.png" alt="{alt}" height="36" border="0"></a>"#,
        href = escape_html(&friend_link(id)),
        code = language.code(),
        alt = escape_html(language.alt_text()),
    )
}

fn friend_link_qr(id: &BasicId) -> QrCode {
    // At most 58 bytes, far below version 40-M's capacity, so encoding cannot fail.
    QrCode::with_error_correction_level(friend_link(id), EcLevel::M).expect("a friend link fits in a qr code")
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use proptest::prelude::*;

    use super::*;

    const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

    fn sample_id() -> BasicId {
        BasicId::parse("@123abcde").unwrap()
    }

    /// Decodes a PNG into 8-bit grayscale pixels, returning (width, height, pixels).
    fn decode_png(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
        let mut decoder = png::Decoder::new(Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        pixels.truncate(info.buffer_size());
        (info.width as usize, info.height as usize, pixels)
    }

    /// Scans the image as a phone would, returning the one code's metadata and text.
    fn read_qr(width: usize, height: usize, pixels: &[u8]) -> (rqrr::MetaData, String) {
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| pixels[y * width + x]);
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "expected exactly one qr code in the image");
        grids[0].decode().unwrap()
    }

    #[test]
    fn the_friend_link_percent_encodes_the_at_sign() {
        assert_eq!(friend_link(&sample_id()), "https://line.me/R/ti/p/%40123abcde");
    }

    #[test]
    fn a_basic_id_keeps_its_at_sign() {
        assert_eq!(sample_id().as_str(), "@123abcde");
        assert_eq!(sample_id().to_string(), "@123abcde");
    }

    #[test]
    fn a_basic_id_without_an_at_sign_is_rejected() {
        assert_eq!(BasicId::parse("123abcde"), Err(FriendError::MissingAtSign));
        assert_eq!(BasicId::parse(""), Err(FriendError::MissingAtSign));
    }

    #[test]
    fn a_basic_id_that_is_only_an_at_sign_is_rejected() {
        assert_eq!(BasicId::parse("@"), Err(FriendError::Empty));
    }

    #[test]
    fn a_basic_id_with_spaces_is_rejected() {
        assert_eq!(BasicId::parse("@123 abcde"), Err(FriendError::InvalidCharacter { character: ' ' }));
        assert_eq!(BasicId::parse(" @123abcde"), Err(FriendError::MissingAtSign));
        assert_eq!(BasicId::parse("@123abcde "), Err(FriendError::InvalidCharacter { character: ' ' }));
    }

    #[test]
    fn a_basic_id_with_other_characters_is_rejected() {
        assert_eq!(BasicId::parse("@abc/def"), Err(FriendError::InvalidCharacter { character: '/' }));
        assert_eq!(BasicId::parse("@a@b"), Err(FriendError::InvalidCharacter { character: '@' }));
        assert_eq!(BasicId::parse("@窓口"), Err(FriendError::InvalidCharacter { character: '窓' }));
    }

    #[test]
    fn a_basic_id_of_32_characters_is_accepted_and_of_33_rejected() {
        let longest = format!("@{}", "a".repeat(32));
        assert_eq!(BasicId::parse(&longest).unwrap().as_str(), longest);
        assert_eq!(BasicId::parse(&format!("@{}", "a".repeat(33))), Err(FriendError::TooLong { length: 33 }));
    }

    #[test]
    fn an_upper_case_basic_id_is_lower_cased_not_rejected() {
        assert_eq!(BasicId::parse("@123ABCde").unwrap(), sample_id());
        assert_eq!("@Shop.Name_1-2".parse::<BasicId>().unwrap().as_str(), "@shop.name_1-2");
    }

    #[test]
    fn the_svg_is_a_self_contained_svg_document_with_a_view_box() {
        let svg = qr_svg(&sample_id());
        assert!(svg.starts_with("<?xml") || svg.starts_with("<svg"));
        assert!(svg.contains("<svg"));
        assert!(svg.contains("viewBox=\"0 0 "));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("#000000") && svg.contains("#ffffff"));
        assert!(!svg.contains("href"), "the svg must not reference anything outside itself");
    }

    #[test]
    fn the_svg_is_as_wide_as_the_code_and_its_quiet_zone() {
        let modules = QrCode::with_error_correction_level(friend_link(&sample_id()), EcLevel::M).unwrap().width();
        let side = (modules + 8) * SVG_MODULE_PX as usize;
        assert!(qr_svg(&sample_id()).contains(&format!("viewBox=\"0 0 {side} {side}\"")));
    }

    #[test]
    fn the_png_starts_with_the_png_signature() {
        assert!(qr_png(&sample_id(), 4).starts_with(&PNG_SIGNATURE));
    }

    #[test]
    fn the_png_is_as_wide_as_the_code_and_its_quiet_zone_times_the_module_size() {
        let modules = QrCode::with_error_correction_level(friend_link(&sample_id()), EcLevel::M).unwrap().width();
        for module_px in [1, 3, 10] {
            let (width, height, _) = decode_png(&qr_png(&sample_id(), module_px));
            assert_eq!(width, (modules + 8) * module_px as usize);
            assert_eq!(height, width);
        }
    }

    #[test]
    fn the_png_has_the_same_modules_as_the_qr_code_of_the_link() {
        let code = QrCode::with_error_correction_level(friend_link(&sample_id()), EcLevel::M).unwrap();
        let modules = code.width();
        let colors = code.to_colors();
        let module_px = 3;
        let (width, _, pixels) = decode_png(&qr_png(&sample_id(), module_px as u32));

        for y in 0..width {
            for x in 0..width {
                let (module_x, module_y) = (x / module_px, y / module_px);
                let in_code = (QUIET_ZONE_MODULES..QUIET_ZONE_MODULES + modules).contains(&module_x)
                    && (QUIET_ZONE_MODULES..QUIET_ZONE_MODULES + modules).contains(&module_y);
                let dark = in_code
                    && colors[(module_y - QUIET_ZONE_MODULES) * modules + module_x - QUIET_ZONE_MODULES] == Color::Dark;
                assert_eq!(pixels[y * width + x], if dark { 0 } else { 255 }, "pixel ({x}, {y})");
            }
        }
    }

    #[test]
    fn a_module_size_of_zero_draws_one_pixel_per_module() {
        assert_eq!(qr_png(&sample_id(), 0), qr_png(&sample_id(), 1));
    }

    #[test]
    fn a_qr_reader_reads_the_friend_link_from_the_png() {
        let id = sample_id();
        let (width, height, pixels) = decode_png(&qr_png(&id, 4));
        let (meta, content) = read_qr(width, height, &pixels);
        assert_eq!(content, friend_link(&id));
        // The format information's two-bit level code: M is 0b00 (L 0b01, H 0b10, Q 0b11).
        assert_eq!(meta.ecc_level, 0, "error correction level must be M");
    }

    #[test]
    fn the_add_friend_button_links_to_the_friend_link_with_the_japanese_image() {
        assert_eq!(
            add_friend_button_html(&sample_id(), ButtonLanguage::Japanese),
            r#"<a href="https://line.me/R/ti/p/%40123abcde"><img src="https://scdn.line-apps.com/n/line_add_friends/btn/ja.png" alt="友だち追加" height="36" border="0"></a>"#
        );
    }

    #[test]
    fn the_add_friend_button_uses_the_image_and_alt_text_of_its_language() {
        let html = add_friend_button_html(&sample_id(), ButtonLanguage::English);
        assert!(html.contains("/btn/en.png\""));
        assert!(html.contains("alt=\"Add friend\""));
        for (language, code) in [
            (ButtonLanguage::TraditionalChinese, "zh-Hant"),
            (ButtonLanguage::Thai, "th"),
            (ButtonLanguage::Korean, "ko"),
        ] {
            let html = add_friend_button_html(&sample_id(), language);
            assert!(html.contains(&format!("/btn/{code}.png\"")));
            assert!(html.contains(&format!("alt=\"{}\"", language.alt_text())));
        }
    }

    #[test]
    fn html_escaping_replaces_markup_characters() {
        assert_eq!(escape_html(r#"a&b<c>"d'"#), "a&amp;b&lt;c&gt;&quot;d&#39;");
    }

    proptest! {
        #[test]
        fn every_well_formed_basic_id_parses_lower_cased_into_its_link(name in "[a-zA-Z0-9._-]{1,32}") {
            let id = BasicId::parse(&format!("@{name}")).unwrap();
            prop_assert_eq!(id.as_str(), format!("@{}", name.to_ascii_lowercase()));
            prop_assert_eq!(friend_link(&id), format!("https://line.me/R/ti/p/%40{}", name.to_ascii_lowercase()));
        }
    }

    proptest! {
        // Each case renders and scans an image, so fewer cases than the default 256.
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn a_qr_reader_reads_the_friend_link_of_any_basic_id(name in "[a-z0-9._-]{1,32}") {
            let id = BasicId::parse(&format!("@{name}")).unwrap();
            let (width, height, pixels) = decode_png(&qr_png(&id, 2));
            prop_assert_eq!(read_qr(width, height, &pixels).1, friend_link(&id));
        }
    }
}
