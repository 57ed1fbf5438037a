#!/usr/bin/env python3
"""Writes the tokenizer test corpus: tests/fixtures/tokenizer/corpus.jsonl, one JSON string a line.

Deterministic (a fixed seed, Python's `random.Random`, whose choices are stable across Python 3
versions), so running it again gives the same file. The corpus covers what breaks tokenizers:
English prose and contractions, code with indentation, CJK, right-to-left and Indic scripts,
emoji with ZWJ sequences and skin tones, combining marks and compatibility characters (for the
NFC/NFKC normalizers), whitespace runs, digits and long numbers, special tokens inside text, and
unusual code points (U+FFFD, noncharacters, private use, controls, text that spells bytes).

Usage: scripts/make_tokenizer_corpus.py [--out PATH]
"""
import argparse
import json
import os
import random

SEED = 20261128

WORDS = """the of and to in is was for that on with as by at from his her an be this which or had
are not but were it have one they their all been has there who would will more when if no out so
said what up its about into than them can only other new some could time these two may then do
first any my now such like our over man me even most made after also did many before must through
back years where much your way well down should because each just those people how too little
state good very make world still own see men work long get here between both life being under
never day same another know while last might us great old year off come since against go came right
used take three himself few house use during without again place around however home small found
Mrs thought went say part once general high upon school every don't does got united left number
course war until always away something fact though water less public put think almost hand enough
far took head yet government system better set told nothing night end why called didn't eyes find
going look asked later knew point next program city business give group toward young days let room
president side social present given several order national possible rather second face per among
form important often things looked early white case John become large big need four within felt
along children saw best church ever least power development light thing seemed family interest want
members mind country area others done turned although open God service certain kind problem began
different door thus help sense means whole matter perhaps itself York it's times law human line above
name example action company hands local show whether five history gave today either act feet across
taken past quite anything seen having death week experience body word half really field am car words
already themselves I'm information tell together college shall money period held keep sure free seems
real behind cannot miss political air question making office brought whose special major heard
problems ago became federal moment study available known result street economic boy position reason
change south board individual job areas society west close turn love community true court force full
seem am policy wife future age voice center woman control common necessary following front sometimes
six girl clear further land run students provide months feel party able""".split()

CAPITALIZED = ["Hello", "World", "Paris", "London", "Tokyo", "OpenAI", "Llama", "Qwen", "DeepSeek",
               "Mistral", "HTTP", "JSON", "NASA", "iPhone", "McDonald's", "O'Brien", "Dr.", "Mr.",
               "U.S.A.", "e.g.", "i.e.", "etc.", "GPU", "H200", "CUDA", "PyTorch", "GitHub"]

CONTRACTIONS = ["don't", "won't", "can't", "I'm", "you're", "she's", "we've", "they'll", "he'd",
                "it's", "DON'T", "I'LL", "WE'VE", "SHE'S", "'s", "'S", "'t", "'re", "'ve", "'m",
                "'ll", "'d", "'D", "'LL", "rock'n'roll", "y'all", "o'clock", "'tis", "''", "'''"]

PUNCT = [".", ",", "!", "?", ";", ":", "...", "--", "-", "—", "–", "(", ")", "[", "]", "{", "}",
         "\"", "'", "«", "»", "“", "”", "‘", "’", "…", "/", "\\", "@", "#", "$", "%", "^", "&",
         "*", "+", "=", "<", ">", "|", "~", "`", "_", "¿", "¡", "§", "¶", "•", "°", "±", "×", "÷"]

CODE_SNIPPETS = [
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}\n",
    "#include <vector>\n#include <string>\n\nint main(int argc, char** argv) {\n  std::vector<std::string> args(argv, argv + argc);\n  return 0;\n}\n",
    "const x = await fetch(`https://example.com/api?q=${encodeURIComponent(q)}`);\nconsole.log(x.status);",
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%son' ORDER BY id DESC LIMIT 10;",
    "{\"model\": \"llama\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"temperature\": 0.7}",
    "<div class=\"container\">\n  <p id='x'>Hello &amp; welcome</p>\n</div>",
    "if [ -z \"$HOME\" ]; then\n  echo 'no home' >&2; exit 1\nfi\nls -la | grep -v '^d' | wc -l",
    "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n}",
    "    \tmixed indentation\n\t    here\n        \t\tand here",
    "x=1;y=2;z=x+y*3/4-5%6**7//8",
    "a_b_c = self.__init__.__dict__['__name__']",
    "camelCaseIdentifier snake_case_identifier SCREAMING_CASE kebab-case-name PascalCase",
    "0x1F600 0b1010 0o777 1e-9 3.14159 -42 +7 1_000_000 0xDEADBEEF",
    "// TODO(alice): fix this\n/* multi\n   line */\n# comment\n-- sql comment",
    "matrix = [[1, 2, 3],\n          [4, 5, 6],\n          [7, 8, 9]]",
    "try:\n    import numpy as np\nexcept ImportError as e:\n    raise SystemExit(f\"missing: {e!r}\")",
    "git commit -m \"Fix: handle \\\"quotes\\\" and \\n newlines\" && git push origin main",
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<root><item key=\"a\"/></root>",
    "\\begin{equation}\n  E = mc^2 \\quad \\forall x \\in \\mathbb{R}\n\\end{equation}",
    "https://user:pass@example.org:8080/path/to/file.html?a=1&b=two#frag",
    "email: first.last+tag@sub.example.co.uk, phone: +1 (555) 123-4567",
    "C:\\Users\\Admin\\Documents\\file (1).txt",
    "```python\nprint('hello')\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |",
]

CHINESE = ["我们今天去公园散步，天气非常好。", "人工智能正在改变世界的每一个角落。",
           "这个模型的参数量是七十亿。", "请问最近的地铁站在哪里？", "北京是中华人民共和国的首都。",
           "学而时习之，不亦说乎？", "他说：“明天见！”", "数据中心的功耗越来越高了。",
           "我喜欢吃饺子和面条。", "大语言模型需要大量的训练数据。", "龍鳳呈祥，萬事如意。",
           "繁體中文與简体中文並存。", "你好世界", "中文没有空格分隔单词", "第一章　总则"]
JAPANESE = ["今日はいい天気ですね。", "東京タワーに行きたいです！", "カタカナとひらがなを混ぜて書く。",
            "ｶﾀｶﾅ半角もあります。", "日本語の文章には句読点「、」と「。」がある。",
            "ラーメンを食べました", "私は学生です", "ｱｲｳｴｵ ﾊﾟﾋﾟﾌﾟ"]
KOREAN = ["안녕하세요, 만나서 반갑습니다.", "한국어 문장은 띄어쓰기를 합니다.", "서울특별시 강남구",
          "대한민국의 수도는 서울입니다.", "ᄒᆞᆫ글 옛한글 자모"]
ARABIC = ["مرحبا بالعالم", "اللغة العربية جميلة جداً.", "بِسْمِ اللَّهِ الرَّحْمَٰنِ الرَّحِيمِ",
          "عدد ١٢٣٤٥٦٧٨٩٠ بالأرقام العربية", "هذا نص تجريبي، مع علامات ترقيم؟"]
HEBREW = ["שלום עולם", "עִבְרִית עם ניקוד", "זה טקסט בעברית."]
HINDI = ["नमस्ते दुनिया", "हिन्दी भाषा में लिखा गया वाक्य।", "क्षत्रिय ज्ञान श्रृंगार", "संख्या १२३४५",
         "मैं घर जा रहा हूँ।"]
OTHER_SCRIPTS = ["Привет, мир! Как дела?", "Ελληνικά: ΟΔΥΣΣΕΥΣ, οδυσσευς, σοφός", "ไทย ภาษาไทยไม่มีช่องว่าง",
                 "Tiếng Việt có dấu: Việt Nam, người, được", "Türkçe: İstanbul, ısı, IĞDIR",
                 "Deutsch: Straße, GROSS, Größe, ẞ", "Français: déjà vu, œuvre, garçon",
                 "Español: ¿Qué tal? ¡Muy bien!", "Polski: źdźbło, łódź, żółć", "ქართული ენა",
                 "Հայերեն լեզու", "አማርኛ ቋንቋ", "தமிழ் மொழி", "বাংলা ভাষা", "ગુજરાતી", "ਪੰਜਾਬੀ",
                 "ᚠᚢᚦᚨᚱᚲ runes", "𐌰𐌱𐌲 gothic", "Ꭰ Ꭱ Ꭲ cherokee", "ᠮᠣᠩᠭᠣᠯ mongolian"]

EMOJI = ["😀", "😂", "🤣", "❤️", "👍", "👍🏻", "👍🏼", "👍🏽", "👍🏾", "👍🏿", "🙏🏽", "🔥", "✨", "🚀",
         "👨‍👩‍👧‍👦", "👩‍❤️‍💋‍👨", "🧑🏽‍💻", "👩🏿‍🚀", "🏳️‍🌈", "🏴‍☠️", "🇺🇸", "🇯🇵", "🇩🇪", "🇫🇷",
         "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "1️⃣", "#️⃣", "*️⃣", "©️", "™️", "☺", "☺️", "🫠", "🥹", "🫶🏾", "🧔‍♀️",
         "👁️‍🗨️", "🐻‍❄️", "❤️‍🔥", "🤌", "🦾", "🇦", "🇦🇦", "👨🏻‍🤝‍👨🏿", "🧑‍🧑‍🧒‍🧒"]

COMBINING = ["e\u0301", "a\u0300\u0316", "n\u0303", "o\u0308\u0304", "A\u030a", "\u0041\u030A\u0301",
             "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034d",
             "\u1100\u1161\u11a8", "\u0915\u094d\u0937", "\u05e9\u05c1\u05bc", "\u0627\u0653",
             "caf\u00e9 vs cafe\u0301", "\u212b", "\u2126", "\u00c5", "i\u0307", "\u0130", "\u03a3\u0301",
             "\u1e9b\u0323", "\u0064\u0323\u0307", "\u0071\u0307\u0323", "\u1e0b\u0323",
             "\u00f1 vs n\u0303", "\u01c4 \u01c5 \u01c6", "\u0344 \u0340 \u0341", "\u0958 \u0959",
             "a\u20dd", "x\u20e3", "\u0e01\u0e34\u0e4a", "\u093f\u0915", "\u0301 leading mark"]

COMPAT = ["ﬁ ﬂ ﬀ ﬃ ﬄ ﬅ ﬆ", "ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ １２３", "x² y³ z¹ 10⁻⁹ H₂O CO₂", "①②③ ⑴⑵ ⒜",
          "㎏ ㎞ ㎡ ㏂ ㍻", "Ⅰ Ⅱ Ⅻ ⅳ ⅿ", "½ ¼ ¾ ⅓ ⅞ ↉", "ℌ ℍ ℕ ℝ ℤ ℂ ℬ ℰ", "𝐀𝐁𝐂 𝑎𝑏𝑐 𝔾𝕠𝕠𝕕 𝕞𝕠𝕣𝕟𝕚𝕟𝕘",
          "™ ℠ ℡ № ℀", "ǆ ǈ ǋ Ǳ", "ſ ẛ ſt", "µ μ", "Å Å Å", "ｶﾞｷﾞ ﾊﾟ", "㈱ ㈲ ㊤ ㊥", "ℎ ℏ",
          "⁰¹²³⁴⁵⁶⁷⁸⁹", "₀₁₂₃₄₅₆₇₈₉", "︵ ︶ ﹁ ﹂", "！＂＃＄％＆＇（）", "\u3000ideographic\u3000space"]

SPACES = [" ", "  ", "   ", "\t", "\n", "\r\n", "\r", "\n\n", "\n\n\n", " \n", "\t\t", " \t ",
          "\u00a0", "\u2009", "\u200a", "\u2002", "\u2003", "\u3000", "\u2028", "\u2029", "\u0085",
          "\u000b", "\u000c", "\u1680", "\u202f", "\u205f", "\u180e", "\u200b", "\ufeff"]

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<tool_call>",
            "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|vision_start|>",
            "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
            "<|eot_id|>", "<|reserved_special_token_5|>", "<｜begin▁of▁sentence｜>",
            "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<|EOT|>", "<｜tool▁calls▁begin｜>",
            "<｜tool▁sep｜>", "<｜place▁holder▁no▁7｜>", "<s>", "</s>", "<unk>", "[INST]", "[/INST]",
            "[TOOL_CALLS]", "[AVAILABLE_TOOLS]", "<pad>", "<mask>", "[MASK]", "<sep>", "yesterday",
            "<tool>", "<|im_start", "im_end|>", "<|", "|>", "<s", "s>", "< s>", "<S>", "<<s>>",
            "<|IM_START|>", "[inst]"]

WEIRD = ["\ufffd", "\ufffd\ufffd", "a\ufffdb", "\ufffe", "\uffff", "\ue000", "\uf8ff", "\U000f0000",
         "\U0010fffd", "\U0010ffff", "\u0000", "a\u0000b", "\u0001\u0002\u0003", "\u001b[31mred\u001b[0m",
         "\u007f", "\u0080\u0081\u009f", "\u200c", "\u200d", "\u200e\u200f", "\u202a\u202b\u202c\u202d\u202e",
         "\u2066\u2067\u2068\u2069", "\U000e0001\U000e0041\U000e007f", "\u0378", "\U0002fffe", "\U0001fffe",
         "Ã©tÃ©", "Ã¢â‚¬â„¢", "\\xff\\xfe", "\\u00e9", "<0xE2><0x82><0xAC>", "<0x0A>", "Ġhello Ċ",
         "▁hello▁world", "ĠĠĠ", "Âł", "\ufe0f", "\ufe0e", "\u034f", "\u2060", "\u00ad soft\u00adhyphen",
         "\ud7ff", "\ue0ff", "\U0001d11e music", "\U0001f3fb", "\U0001f3ff\U0001f3fb", "\u20e3",
         "\U0001f1e6\U0001f1e7\U0001f1e8", "\u0e3f", "\u02bc", "\u2019s", "\u00b4s", "\uff07s"]


def rnd_word(r):
    x = r.random()
    if x < 0.75:
        return r.choice(WORDS)
    if x < 0.85:
        return r.choice(CAPITALIZED)
    if x < 0.93:
        return r.choice(CONTRACTIONS)
    return r.choice(WORDS).upper() if r.random() < 0.5 else r.choice(WORDS).capitalize()


def sentence(r, n_min=4, n_max=18):
    words = [rnd_word(r) for _ in range(r.randint(n_min, n_max))]
    out = words[0].capitalize()
    for w in words[1:]:
        sep = " "
        if r.random() < 0.08:
            out += r.choice([",", ";", ":", " -", " (", "\""])
        out += sep + w
    return out + r.choice([".", ".", ".", "!", "?", "...", "", ":", " :)", "?!"])


def prose(r):
    return " ".join(sentence(r) for _ in range(r.randint(1, 4)))


def number(r):
    k = r.random()
    if k < 0.3:
        return str(r.randint(0, 10 ** r.randint(1, 12)))
    if k < 0.45:
        return "".join(r.choice("0123456789") for _ in range(r.randint(20, 80)))
    if k < 0.6:
        return f"{r.uniform(-1e6, 1e6):.{r.randint(0, 8)}f}"
    if k < 0.7:
        return f"{r.randint(1, 9999):,}".replace(",", r.choice([",", ".", " ", "\u202f", "'"]))
    if k < 0.8:
        return "".join(r.choice("٠١٢٣٤٥٦٧٨٩०१२३४५६७८९０１２３４５６７８９") for _ in range(r.randint(1, 12)))
    if k < 0.9:
        return r.choice(["1st", "2nd", "3rd", "4th", "21st", "100%", "$9.99", "€12,50", "¥1000", "3/4",
                         "2026-11-28", "12:34:56", "v1.2.3", "192.168.0.1", "1e10", "−5", "²³", "٣.١٤"])
    return "".join(r.choice(["1", "22", "333", "4444", " ", "-", "."]) for _ in range(r.randint(3, 15)))


def whitespace_case(r):
    k = r.random()
    if k < 0.25:
        return r.choice(WORDS) + " " * r.randint(2, 120) + r.choice(WORDS)
    if k < 0.4:
        return "\t" * r.randint(1, 30) + r.choice(WORDS) + "\t" * r.randint(0, 5)
    if k < 0.55:
        return "".join(r.choice(SPACES) for _ in range(r.randint(1, 40)))
    if k < 0.7:
        return "\n".join(r.choice(WORDS) + " " * r.randint(0, 3) for _ in range(r.randint(2, 10))) + "\n" * r.randint(0, 4)
    if k < 0.8:
        return " " * r.randint(1, 20) + prose(r) + " " * r.randint(1, 20)
    if k < 0.9:
        return r.choice(WORDS) + r.choice(SPACES) + r.choice(WORDS) + r.choice(SPACES) + r.choice(WORDS)
    return "\r\n".join(sentence(r) for _ in range(r.randint(2, 4)))


def pick_script(r):
    pools = [CHINESE, JAPANESE, KOREAN, ARABIC, HEBREW, HINDI, OTHER_SCRIPTS]
    return r.choice(r.choice(pools))


def emoji_case(r):
    k = r.random()
    parts = [r.choice(EMOJI) for _ in range(r.randint(1, 8))]
    if k < 0.4:
        return "".join(parts)
    if k < 0.8:
        return sentence(r).rstrip(".") + " " + " ".join(parts) + r.choice(["", ".", "!"])
    return r.choice(CHINESE) + "".join(parts) + r.choice(ARABIC)


def special_case(r):
    specials = [r.choice(SPECIALS) for _ in range(r.randint(1, 4))]
    k = r.random()
    if k < 0.3:
        return "".join(specials)
    if k < 0.6:
        out = ""
        for s in specials:
            out += r.choice(["", " ", "  ", "\n", "text", " hello ", "你好", "\t"]) + s
        return out + r.choice(["", " ", "end", "\n"])
    if k < 0.8:
        return specials[0] + prose(r) + specials[-1]
    return "<|im_start|>" + r.choice(["system", "user", "assistant"]) + "\n" + prose(r) + "<|im_end|>\n"


def weird_case(r):
    k = r.random()
    if k < 0.5:
        return r.choice(WEIRD)
    if k < 0.8:
        return r.choice(WORDS) + r.choice(WEIRD) + r.choice(WORDS)
    cp = r.choice([r.randint(0x20, 0x7ff), r.randint(0x800, 0xd7ff), r.randint(0xe000, 0xfffd),
                   r.randint(0x10000, 0x1ffff), r.randint(0x20000, 0x10ffff)])
    return "x" + "".join(chr(cp + i) for i in range(r.randint(1, 6)) if not 0xd800 <= cp + i <= 0xdfff and cp + i <= 0x10ffff)


def mixed(r):
    gens = [prose, number, whitespace_case, pick_script, emoji_case, special_case, weird_case,
            lambda r: r.choice(CODE_SNIPPETS), lambda r: r.choice(COMBINING), lambda r: r.choice(COMPAT)]
    return r.choice(["", " ", "\n", ""]).join(r.choice(gens)(r) for _ in range(r.randint(2, 5)))


def corpus():
    r = random.Random(SEED)
    out = ["", " ", "  ", "\n", "a", "A", "Hello world", " Hello world", "Hello world ", "hello  world",
           "I", " I", "'", "''", "\"", "<", ">", "0", "00", "000", "0000", "12345678901234567890"]
    out += CONTRACTIONS + CAPITALIZED + PUNCT + SPECIALS + WEIRD + SPACES + EMOJI + COMBINING + COMPAT
    out += CHINESE + JAPANESE + KOREAN + ARABIC + HEBREW + HINDI + OTHER_SCRIPTS + CODE_SNIPPETS
    out += [prose(r) for _ in range(350)]
    out += [sentence(r, 1, 4) for _ in range(100)]
    out += [number(r) for _ in range(150)]
    out += [whitespace_case(r) for _ in range(200)]
    out += ["".join(pick_script(r) for _ in range(r.randint(1, 3))) for _ in range(200)]
    out += [pick_script(r) + " " + prose(r) for _ in range(60)]
    out += [emoji_case(r) for _ in range(150)]
    out += [r.choice(COMBINING) + r.choice(COMPAT) + r.choice(COMBINING) for _ in range(60)]
    out += [special_case(r) for _ in range(200)]
    out += [weird_case(r) for _ in range(150)]
    out += [r.choice(CODE_SNIPPETS) + "\n" + r.choice(CODE_SNIPPETS) for _ in range(50)]
    out += [mixed(r) for _ in range(400)]
    # Long inputs: one huge pre-token, long runs of one character class, long mixed text.
    out += ["a" * 3000, " " * 1000, "\n" * 500, "9" * 1000, "你" * 800, "😀" * 300, "ab" * 1500,
            "".join(r.choice(CHINESE) for _ in range(60)).replace("，", "").replace("。", ""),
            "\n\n".join(prose(r) for _ in range(20)), "\t \n" * 300, "-" * 400 + "=" * 400,
            "".join(chr(c) for c in range(0x20, 0x3000) if chr(c).isprintable()),
            "".join(r.choice(EMOJI) for _ in range(200))]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "tokenizer", "corpus.jsonl"))
    args = parser.parse_args()
    strings = corpus()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        for s in strings:
            f.write(json.dumps(s, ensure_ascii=False) + "\n")
    print(f"wrote {len(strings)} strings, {sum(len(s.encode()) for s in strings)} bytes of text to {args.out}")


if __name__ == "__main__":
    main()
