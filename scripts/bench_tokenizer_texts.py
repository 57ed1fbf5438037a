#!/usr/bin/env python3
"""Writes the two texts the tokenizer speed benchmark encodes: english.txt and cjk.txt.

english.txt: the license texts of /usr/share/common-licenses (present on every Debian and Ubuntu
system), concatenated in name order and repeated to about 2 MB. cjk.txt: Chinese and Japanese
sentences below, shuffled with a fixed seed, about 1 MB. Both are deterministic, so the C++
benchmark here and Hugging Face `tokenizers` on another machine encode the same bytes.

Usage: scripts/bench_tokenizer_texts.py OUT_DIR
"""
import os
import random
import sys

CJK_SENTENCES = """人工智能正在深刻地改变我们的生活方式和工作方式。
大型语言模型通过学习海量文本数据来理解和生成自然语言。
在推理服务中，吞吐量和延迟是两个最重要的指标。
分页注意力机制把键值缓存分成固定大小的块，从而减少显存碎片。
连续批处理允许新的请求在每一步加入正在运行的批次。
昨天晚上我和朋友们一起去吃了火锅，味道非常好。
北京的秋天天高云淡，是一年中最美的季节。
这本书讲述了一个普通人在大时代中的奋斗故事。
请把文件保存到共享目录，然后通知项目组的其他成员。
如果服务器在十秒内没有响应，客户端应该重新发送请求。
长江是中国最长的河流，全长约六千三百公里。
他一边听音乐，一边认真地完成了老师布置的作业。
随着技术的发展，越来越多的企业开始使用云计算。
数据的质量往往比数据的数量更加重要。
我们需要在保证正确性的前提下尽可能提高性能。
春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。
会议将在下午三点开始，请大家准时参加。
这个算法的时间复杂度是线性的，空间复杂度是常数。
孩子们在公园里放风筝，笑声传得很远很远。
医生建议他每天坚持锻炼，少吃油腻的食物。
上海是一座充满活力的国际化大都市。
由于天气原因，今天的航班全部延误了。
学习一门新的编程语言需要时间和耐心。
这家餐厅的招牌菜是红烧肉和清蒸鱼。
科学家们发现了一种新的材料，它的导电性能非常出色。
年轻人应该勇敢地追求自己的梦想。
图书馆里安静极了，只能听到翻书的声音。
每个进程都有自己独立的地址空间。
模型的参数被加载到显卡的高带宽内存中。
张先生已经在这家公司工作了二十多年。
今日は朝から雨が降っていて、とても寒いです。
東京駅から新幹線に乗って京都へ行きました。
このプログラムは入力された文章を単語に分割します。
私たちは週末に山へハイキングに行く予定です。
日本の伝統的な料理には、寿司や天ぷらなどがあります。
新しいスマートフォンのバッテリーは二日間持ちます。
図書館で借りた本を明日までに返さなければなりません。
彼女はピアノを弾くのがとても上手です。
서울은 한국의 수도이며 인구가 가장 많은 도시입니다.
오늘 저녁에는 친구와 함께 영화를 보러 갈 거예요.""".split("\n")


def english_text(target_bytes=2_000_000):
    base = "/usr/share/common-licenses"
    parts = []
    for name in sorted(os.listdir(base)):
        with open(os.path.join(base, name), encoding="utf-8", errors="replace") as f:
            parts.append(f.read())
    one = "\n".join(parts)
    return (one * (target_bytes // len(one.encode()) + 1))[: target_bytes]


def cjk_text(target_bytes=1_000_000):
    r = random.Random(7)
    out, size = [], 0
    while size < target_bytes:
        paragraph = "".join(r.choice(CJK_SENTENCES) for _ in range(r.randint(2, 6)))
        out.append(paragraph)
        size += len(paragraph.encode()) + 1
    return "\n".join(out)


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    for name, text in [("english.txt", english_text()), ("cjk.txt", cjk_text())]:
        with open(os.path.join(out_dir, name), "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        print(f"{name}: {len(text.encode())} bytes")


if __name__ == "__main__":
    main()
