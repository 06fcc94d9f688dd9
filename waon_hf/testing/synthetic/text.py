"""Text pools per language variant and the paragraph writer that fills a page to a size.

Variants: ja (see :mod:`~waon_hf.testing.synthetic.text_ja`), zh-hans, zh-hant, ko and en. The
Chinese, Korean and English pools are the negatives of language identification: Chinese is hanzi
only (one sentence per variant holds a katakana word), English never holds kana.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass

from waon_hf.testing.synthetic.text_ja import JA_CAPTIONS, JA_FIGCAPTIONS, JA_SENTENCES

_ZH_HANS_SENTENCES = """
今天早上下了一场大雨，路上的行人都打着伞。
这家餐厅的红烧肉味道非常正宗。
周末我们全家去郊外的公园野餐。
新款手机的电池续航能力有了明显提升。
北京的秋天天高云淡，是旅游的最佳季节。
本店所有商品均支持七天无理由退货。
他每天早上六点起床，坚持跑步五公里。
这座古镇保留了许多明清时期的建筑。
会议将于下周三上午九点在三楼会议室举行。
春节期间，火车站迎来了客流高峰。
我们的客服团队全天候为您提供服务。
这本小说讲述了一个普通家庭三代人的故事。
孩子们在操场上开心地踢足球。
西湖的荷花正在盛开，吸引了大批游客。
请在收到商品后及时确认收货。
这款软件可以帮助你轻松管理日常开支。
成都的火锅以麻辣鲜香而闻名全国。
近年来，越来越多的年轻人选择回到家乡创业。
图书馆新增了一批科技类图书，欢迎借阅。
天气预报说明天有小雨，出门记得带伞。
研究人员在实验中发现了一种新的材料。
这条街上有很多卖小吃的摊位。
学校将于九月一日正式开学。
他用手机拍下了夕阳西下的美景。
长城是中国最著名的古代建筑之一。
我最近开始学习弹吉他。
这家咖啡馆环境安静，很适合看书。
点击下方按钮即可免费注册会员。
今年夏天的气温比往年都要高。
老师耐心地为学生们讲解数学题。
上海的外滩夜景非常迷人。
公司决定明年在南方开设新的分公司。
奶奶做的饺子是我最喜欢的食物。
这部电影上映第一周票房就突破了十亿元。
我们在山顶看到了壮观的日出。
如有任何疑问，请随时与我们联系。
桂林山水甲天下，漓江的风景令人陶醉。
他在比赛中获得了第一名的好成绩。
新开的商场里有很多国际品牌。
每天多喝水对身体健康有好处。
这个小区的绿化做得非常好。
我们计划国庆节去云南旅游。
网站正在维护中，给您带来不便敬请谅解。
广州的早茶文化历史悠久。
爷爷每天早上都会去公园打太极拳。
这道菜的做法很简单，只需要十分钟。
本店支持微信和支付宝付款。
下载最新版本的App即可享受会员优惠。
营业时间为每天9:00至21:00。
"""

_ZH_HANT_SENTENCES = """
今天早上下了一場大雨，路上的行人都撐著傘。
這家餐廳的牛肉麵味道非常道地。
週末我們全家去郊外的公園野餐。
新款手機的電池續航力有了明顯提升。
臺北的夜市是觀光客必去的景點。
本店所有商品均享有七天鑑賞期。
他每天早上六點起床，堅持慢跑五公里。
這條老街保留了許多早期的建築。
會議將於下週三上午九點在三樓會議室舉行。
農曆新年期間，高鐵站湧入大量返鄉人潮。
我們的客服團隊全年無休為您服務。
這本小說描寫了一個平凡家庭三代人的故事。
孩子們在操場上開心地打籃球。
日月潭的風景優美，吸引了許多遊客。
請於收到商品後儘速確認。
這款應用程式可以幫助你輕鬆記帳。
高雄的港口夜景令人印象深刻。
近年來，越來越多年輕人選擇回到故鄉創業。
圖書館新增了一批科學類書籍，歡迎借閱。
氣象預報說明天午後有雷陣雨，出門記得帶傘。
研究團隊在實驗中發現了一種新型材料。
這條巷子裡有很多賣小吃的攤販。
學校將於九月一日正式開學。
他用相機拍下了夕陽西下的美景。
阿里山的日出是許多人一生必看的景色。
我最近開始學習彈鋼琴。
這家咖啡廳環境安靜，很適合看書。
點擊下方按鈕即可免費註冊會員。
今年夏天的氣溫比往年都要高。
老師耐心地為學生講解數學題目。
香港的維多利亞港夜景非常迷人。
奶奶包的水餃是我最喜歡的食物。
如有任何疑問，請隨時與我們聯繫。
颱風即將登陸，請民眾做好防颱準備。
這道菜的做法很簡單，只需要十分鐘。
台中的珍珠奶茶聞名全世界。
營業時間為每日上午十點至晚上九點。
網站正在維護中，造成不便敬請見諒。
"""

# One katakana word in otherwise Chinese text (anime titles do appear on zh pages).
ZH_KANA_SENTENCES = {
    "zh-hans": "我儿子最喜欢的动画是《ナルト》，每周都会准时收看。",
    "zh-hant": "我兒子最喜歡的動畫是《ナルト》，每週都會準時收看。",
}

_ZH_HANS_CAPTIONS = """
外滩夜景
西湖荷花
店铺外观
新品包装
远眺长城
红烧肉
会议现场
员工合影
桂林山水
产品细节图
麻辣火锅
古镇街景
山顶日出
图书馆内景
春节庙会
校园一角
早茶点心
公司大楼
手机拍摄的夕阳
熊猫宝宝
"""

_ZH_HANT_CAPTIONS = """
台北夜景
日月潭風景
牛肉麵
夜市小吃
阿里山日出
店鋪外觀
新品包裝
活動現場
員工合照
珍珠奶茶
老街街景
維多利亞港
圖書館內部
颱風過後的街道
產品細節圖
"""

_KO_SENTENCES = """
오늘 아침에는 비가 많이 내려서 우산을 쓰고 출근했습니다.
주말에 가족과 함께 제주도로 여행을 다녀왔어요.
이 식당의 김치찌개는 정말 맛있기로 유명합니다.
새로 출시된 스마트폰은 카메라 성능이 크게 향상되었습니다.
서울의 가을 하늘은 유난히 높고 푸릅니다.
주문하신 상품은 영업일 기준 2~3일 이내에 발송됩니다.
매일 아침 한강 공원에서 조깅을 하고 있어요.
경주에는 신라 시대의 유적이 많이 남아 있습니다.
회의는 다음 주 수요일 오전 10시에 3층 회의실에서 열립니다.
설날에는 온 가족이 모여 떡국을 먹습니다.
고객센터는 평일 오전 9시부터 오후 6시까지 운영합니다.
이 소설은 평범한 가족의 삼대에 걸친 이야기를 담고 있습니다.
아이들이 놀이터에서 신나게 뛰어놀고 있었어요.
부산 해운대 해수욕장은 여름마다 많은 피서객으로 붐빕니다.
상품을 받으신 후 구매 확정을 눌러 주세요.
이 앱을 사용하면 가계부를 쉽게 관리할 수 있습니다.
전주 한옥마을에서 비빔밥을 먹었습니다.
최근에는 귀농을 선택하는 젊은이들이 늘고 있습니다.
도서관에 새로운 과학 도서가 들어왔습니다.
내일은 전국에 비 소식이 있으니 우산을 챙기세요.
연구팀은 새로운 소재 개발에 성공했다고 밝혔습니다.
이 골목에는 맛있는 분식집이 많이 있어요.
개학은 3월 2일입니다.
그는 휴대폰으로 노을 지는 풍경을 찍었습니다.
경복궁은 조선 시대의 대표적인 궁궐입니다.
요즘 기타를 배우기 시작했어요.
이 카페는 조용해서 책 읽기에 좋습니다.
아래 버튼을 누르면 무료로 회원 가입을 할 수 있습니다.
올여름은 예년보다 훨씬 더웠습니다.
선생님께서 학생들에게 수학 문제를 친절하게 설명해 주셨습니다.
남산타워에서 바라본 서울의 야경이 아름다웠어요.
할머니가 만들어 주신 만두가 제일 맛있어요.
궁금한 점이 있으시면 언제든지 문의해 주세요.
태풍이 북상하고 있으니 외출을 자제해 주시기 바랍니다.
이 요리는 만드는 방법이 간단해서 10분이면 충분합니다.
大韓民國의 수도는 서울입니다.
이번 行事에는 많은 시민이 참여했습니다.
새로운 AI 기술이 산업 전반에 큰 변화를 가져오고 있습니다.
온라인 쇼핑몰에서 SALE 이벤트를 진행 중입니다.
가을이 되면 설악산은 단풍을 보러 온 등산객으로 가득합니다.
"""

_KO_CAPTIONS = """
남산타워 야경
제주도 바다
김치찌개
매장 외관
신제품 패키지
경복궁 근정전
회의 현장
직원 단체 사진
해운대 해수욕장
비빔밥
한옥마을 풍경
벚꽃 길
노을 지는 한강
단풍 든 설악산
떡볶이
"""

_EN_SENTENCES = """
It rained all morning, so we stayed inside and baked bread.
Our new store opens next Monday on the corner of Main Street.
The museum's summer exhibition focuses on early photography.
Orders placed before noon are shipped on the same day.
We spent the weekend hiking along the coast.
This recipe only needs five ingredients and twenty minutes.
The city council approved the plan to extend the bike lanes.
Please read the installation guide before updating the firmware.
Our support team answers most emails within one business day.
The festival draws thousands of visitors every autumn.
She has been learning to play the violin since she was six.
The library now offers free Wi-Fi and longer opening hours.
Prices include tax and free delivery within the country.
The train was delayed by about fifteen minutes because of the snow.
We tested the new laptop for two weeks before writing this review.
Fresh vegetables from local farms arrive every morning.
The view from the top of the hill was worth the climb.
Registration for the spring workshop closes on Friday.
The team released a patch that fixes several known bugs.
Thank you for visiting our website.
The garden is at its best in late May when the roses bloom.
He wrote the first draft of the novel in a small cabin by the lake.
Parking is available behind the building.
Subscribe to our newsletter to get the latest updates.
The conference will be held online this year.
Our cafe serves breakfast until eleven on weekends.
The old bridge was closed for repairs last month.
Kids under twelve get in for free on Sundays.
Scientists announced the discovery of a new species of frog.
Please contact us if you have any questions about your order.
"""

_EN_CAPTIONS = """
Tokyo skyline at night
Cherry blossoms in the park
Our store front
New product packaging
Team photo 2023
Fresh bread from the oven
Mountain trail in autumn
Conference hall
Map of the area
Sunset over the harbor
Product detail
Workshop participants
Coffee and cake
Old town street
Snowy village
"""


def lines(block: str) -> tuple[str, ...]:
    """The non-blank lines of a text block, stripped."""
    return tuple(line.strip() for line in block.strip().splitlines() if line.strip())


@dataclass(frozen=True)
class TextPool:
    """What pages of one language variant are written with."""

    sentences: tuple[str, ...]
    captions: tuple[str, ...]
    figcaptions: tuple[str, ...]
    joiner: str  # between sentences: nothing for CJK, a space for ko/en

    @functools.cached_property
    def mean_len(self) -> float:
        return sum(map(len, self.sentences)) / len(self.sentences) + len(self.joiner)


@functools.cache
def text_pool(variant: str) -> TextPool:
    """Text pool for a language variant: ja, zh-hans, zh-hant, ko, en."""
    if variant == "ja":
        return TextPool(lines(JA_SENTENCES), lines(JA_CAPTIONS), lines(JA_FIGCAPTIONS), "")
    if variant == "zh-hans":
        caps = lines(_ZH_HANS_CAPTIONS)
        return TextPool(lines(_ZH_HANS_SENTENCES), caps, caps, "")
    if variant == "zh-hant":
        caps = lines(_ZH_HANT_CAPTIONS)
        return TextPool(lines(_ZH_HANT_SENTENCES), caps, caps, "")
    if variant == "ko":
        caps = lines(_KO_CAPTIONS)
        return TextPool(lines(_KO_SENTENCES), caps, caps, " ")
    if variant == "en":
        caps = lines(_EN_CAPTIONS)
        return TextPool(lines(_EN_SENTENCES), caps, caps, " ")
    raise ValueError(f"unknown language variant {variant!r}")


@functools.cache
def bytes_per_char(variant: str, encoding: str) -> float:
    """Average encoded size of pool text, used to size pages without re-encoding them."""
    text = "".join(text_pool(variant).sentences)
    return len(text.encode(encoding, "xmlcharrefreplace")) / len(text)


def paragraphs(rng: random.Random, variant: str, n_chars: int, extra: Sequence[str] = ()) -> list[str]:
    """Paragraph texts totalling about n_chars characters; `extra` sentences are spliced in."""
    pool = text_pool(variant)
    n_sent = max(1, round(n_chars / pool.mean_len))
    sentences = rng.choices(pool.sentences, k=n_sent)
    for i, s in enumerate(extra):
        sentences.insert(min(len(sentences), 1 + i * 3), s)
    sizes = (3, 4, 5, 4, 6, 2)
    out, i, k = [], 0, 0
    while i < len(sentences):
        step = sizes[k % len(sizes)]
        out.append(pool.joiner.join(sentences[i:i + step]))
        i, k = i + step, k + 1
    return out
