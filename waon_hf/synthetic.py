"""Deterministic synthetic web pages and WARC files for tests and benchmarks.

All randomness comes from ``random.Random`` objects: ``make_page`` takes one, and
``generate_corpus`` derives one per page from ``(seed, index)`` (see :func:`page_rng`), so the
same seed gives byte-identical files whatever the number of worker processes (WARC dates, record
ids and gzip headers are fixed too).

Page kinds
----------
* **Japanese** (``lang="ja"``): sentences from a hand-written pool (hiragana, katakana, kanji,
  some ASCII). Encodings cycle through utf-8, shift_jis, cp932, euc-jp and iso-2022-jp.
  cp932 pages contain characters that exist only in cp932 (①, ㈱, 髙, №, Ⅲ) and are declared
  with WHATWG *Shift_JIS* labels (``Shift_JIS``, ``Windows-31J``, ``MS932``, ``x-sjis``): a correct
  decoder maps that whole label family to cp932 (``windows-31j``/``x-sjis`` are unknown to Python).
  The charset is declared in one of several ways (``charset_in``):

  - ``header``: only in the HTTP ``Content-Type`` header;
  - ``meta``: ``<meta charset=...>`` in the first 1024 bytes, header without charset;
  - ``http-equiv``: ``<meta http-equiv="Content-Type" content="text/html; charset=...">``;
  - ``bom``: UTF-8 byte order mark, no declaration (utf-8 only);
  - ``none``: no declaration at all, the detector must find it (used for utf-8, shift_jis, euc-jp);
  - ``conflict``: header charset is right, ``<meta charset>`` is wrong: the header must win.

* **Chinese** (``lang="zh"``): simplified (utf-8 or gb18030, declared as GB18030/GBK/gb2312) or
  traditional (big5 or utf-8) text written in hanzi only; one zh page in seven contains a single
  katakana word, so a "has kana" pre-check alone cannot separate ja from zh.
* **Korean** (``lang="ko"``): hangul (utf-8 or euc-kr), some hanja and English words.
* **English** (``lang="en"``): ASCII (utf-8 or windows-1252), never any kana.

Characters that the page encoding cannot represent (emoji in shift_jis pages, ...) are written
as numeric character references, as real sites do.

Images and ``expected_pairs``
-----------------------------
Every page has ``n_images`` image snippets taken in rotation from ``IMAGE_KINDS`` so that the
whole corpus covers every extraction rule (relative/absolute/protocol-relative urls, ``<base
href>``, figure/figcaption, lazy-loading attributes, srcset, skipped data:/javascript:/ftp:
urls, trackers, spacers, icons, missing alt, entities, odd captions). Pages also contain decoy
``<img>`` markup inside ``<script>`` strings and HTML comments, which is not an element and must
not be extracted. ``expected_pairs`` is computed by :func:`expected_pair`, which implements the
extraction rules (before caption filtering, without NFKC):

1. url candidates, in order: ``data-src``, ``data-original``, ``data-lazy-src``, ``src``, best
   ``srcset`` entry, best ``data-srcset`` entry (largest ``w``/``x`` descriptor, none = 1x);
   the first one that is non-empty and not a ``data:`` URI wins;
2. it is resolved with ``urllib.parse.urljoin`` against ``<base href>`` (itself resolved against
   the page url) or the page url; the fragment is removed; only http/https are kept;
3. skipped when ``width`` or ``height`` is numeric and < 10 (``"100%"`` is not numeric), or when
   the last path segment (lowercased) is a spacer name (spacer.gif, pixel.gif, ...) or ends in
   .svg/.svgz/.ico;
4. caption = whitespace-collapsed text of the ``<figcaption>`` of the nearest enclosing
   ``<figure>`` when non-empty, else the whitespace-collapsed, entity-decoded ``alt``
   (``" ".join(s.split())``, which also collapses U+3000 and the U+00A0 of ``&nbsp;``); empty
   captions are skipped.

Attribute values are entity-decoded before all this (``src="a.php?x=1&amp;y=2"`` gives
``...?x=1&y=2``); urls are not percent-encoded or otherwise normalised.

Broken corpora
--------------
``generate_corpus(broken=True)`` inserts, at deterministic positions, records that a robust
reader must survive: request and metadata records, responses with a garbled HTTP header block
(no status line / no blank line), binary bytes served as text/html, an oversized HTML page, an
image/jpeg response, 404 and 301 responses, raw garbage bytes between two gzip members, and, as
the very last member, a truncated gzip member. The manifest says which is which and keeps the
would-be pairs of the oversized, 404 and truncated pages.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import gzip
import hashlib
import html as _html
import itertools
import os
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlparse, urlsplit

__all__ = [
    "SyntheticPage",
    "Garbage",
    "Truncated",
    "IMAGE_KINDS",
    "JA_ENCODINGS",
    "CHARSET_MODES",
    "make_page",
    "expected_pair",
    "srcset_best",
    "warc_record",
    "warc_response",
    "warc_request",
    "warc_metadata",
    "warcinfo",
    "http_response_block",
    "encode_item",
    "write_warc",
    "corpus_plan",
    "page_rng",
    "generate_corpus",
]

# --------------------------------------------------------------------------------------------
# Text pools (hand-written). Japanese strings only use characters that round-trip identically
# through shift_jis, cp932, euc-jp and iso-2022-jp (no wave dash, no full-width minus, ...).
# --------------------------------------------------------------------------------------------

_JA_SENTENCES = """
今日は朝から雨が降っていたので、駅まで傘をさして歩きました。
週末に家族で箱根の温泉に行ってきました。
このカフェのチーズケーキは、しっとりとした食感が人気です。
新しいスマートフォンのカメラ性能は、前のモデルより大幅に向上しています。
桜の開花は例年より一週間ほど早くなる見込みです。
京都の嵐山では、竹林の小道を散策する観光客でにぎわっていました。
ご注文いただいた商品は、三営業日以内に発送いたします。
夏休みの自由研究として、アサガオの観察日記をつけることにしました。
会議の資料は共有フォルダにアップロードしておきました。
北海道の冬は厳しいですが、雪景色は本当に美しいです。
駅前に新しいラーメン屋がオープンしたので、さっそく行ってみました。
スープは濃厚な豚骨ベースで、細めの麺によく絡みます。
最近はリモートワークが増え、通勤時間が減りました。
このレシピでは、玉ねぎをあめ色になるまでじっくり炒めるのがポイントです。
富士山の五合目までバスで行き、そこから山頂を目指しました。
来月から料金プランが一部変更になりますので、ご確認ください。
図書館で借りた小説を一晩で読み終えてしまいました。
子どもたちは公園で元気にボール遊びをしていました。
梅雨の時期は洗濯物が乾きにくいので、除湿機が欠かせません。
このアプリを使えば、家計簿を簡単につけることができます。
沖縄の海は透明度が高く、シュノーケリングに最適です。
地元の商店街では、毎年秋にお祭りが開かれます。
新幹線の窓から見える田園風景に、思わず見とれてしまいました。
お問い合わせはメールフォームから受け付けております。
春の新作コレクションが店頭に並び始めました。
研究チームは新しい素材の開発に成功したと発表しました。
日曜日の朝は、近所のパン屋で焼きたてのクロワッサンを買うのが習慣です。
プログラミングの勉強を始めて、もうすぐ半年になります。
この美術館では、江戸時代の浮世絵を中心に展示しています。
天気予報によると、明日は晴れ時々くもりだそうです。
初めてのキャンプでしたが、テントの設営は思ったより簡単でした。
祖母から教わった煮物の味を、今でも大切にしています。
台風の影響で、一部の電車に遅れが出ています。
新しいノートパソコンは軽くて、持ち運びにとても便利です。
紅葉の季節になると、山全体が赤や黄色に染まります。
今回のアップデートでは、いくつかの不具合が修正されました。
朝のランニングを続けたおかげで、体力がついてきた気がします。
友人の結婚式で、久しぶりに大学時代の仲間と再会しました。
このホテルからは東京スカイツリーがよく見えます。
期間限定のセールは今週の日曜日までです。
日本酒の試飲会に参加して、いろいろな銘柄を飲み比べました。
犬の散歩をしていると、近所の人によく声をかけられます。
小学校の運動会では、リレーが一番盛り上がりました。
スーパーで旬の野菜を買って、簡単なサラダを作りました。
新しい年度が始まり、職場にも新入社員が入ってきました。
地震に備えて、非常用の水と食料を準備しておきましょう。
鎌倉の大仏を見たあと、小町通りで食べ歩きを楽しみました。
このブログでは、日々の暮らしで気づいたことを書いています。
ピアノの発表会に向けて、毎日一時間練習しています。
映画館で話題のアニメ映画を観てきました。
ホームページをリニューアルしましたので、ぜひご覧ください。
奈良公園の鹿は、せんべいをもらうためにお辞儀をします。
引っ越しの準備で、段ボール箱が部屋中に積み上がっています。
長崎の夜景は、世界新三大夜景のひとつに選ばれています。
この商品は在庫限りとなりますので、お早めにお求めください。
雨上がりの空に大きな虹がかかっていました。
会員登録をすると、ポイントがたまるお得なサービスをご利用いただけます。
金沢の兼六園は、雪吊りの風景が特に有名です。
最近、家庭菜園でミニトマトを育て始めました。
英会話教室に通い始めてから、少しずつ話せるようになってきました。
このイベントは入場無料で、どなたでも参加できます。
古い町並みが残る高山では、朝市が開かれていました。
夜遅くまで作業していたので、今朝は少し寝坊してしまいました。
電子書籍リーダーを買ってから、読書量が増えました。
今年の夏は記録的な猛暑となり、熱中症への注意が呼びかけられています。
商品のサイズや色については、各ページの詳細をご確認ください。
広島のお好み焼きは、そばが入っているのが特徴です。
休日には自転車で川沿いのサイクリングロードを走っています。
このセミナーでは、データ分析の基礎をわかりやすく解説します。
インターネットの回線速度が遅いときは、ルーターを再起動してみてください。
伊勢神宮にお参りしたあと、おかげ横丁で名物のお餅を食べました。
ベランダで育てているバジルが、ずいぶん大きくなりました。
社内の勉強会で、新しいフレームワークについて発表しました。
大阪の道頓堀は、たこ焼きや串カツのお店が立ち並ぶにぎやかな場所です。
冬になると、こたつでみかんを食べるのが楽しみです。
本日のランチは、日替わりの焼き魚定食です。
高校野球の決勝戦は、延長戦の末に決着がつきました。
写真を撮るのが好きで、休みの日はカメラを持って出かけます。
このページでは、よくある質問とその回答をまとめています。
ガーデニングを始めるなら、まずは育てやすいハーブがおすすめです。
京都駅から清水寺までは、バスで二十分ほどかかります。
新商品の発売を記念して、プレゼントキャンペーンを実施中です。
猫が窓辺で気持ちよさそうに日向ぼっこをしています。
仕事帰りに同僚と居酒屋で焼き鳥を食べました。
昔ながらの喫茶店で、ナポリタンとクリームソーダを注文しました。
このマンションは駅から徒歩五分の好立地にあります。
農家の方から直接買ったお米は、炊き上がりの香りが違います。
今月のおすすめ本を三冊ご紹介します。
東京マラソンに初めて出場し、なんとか完走することができました。
窓を開けると、どこからか金木犀の香りが漂ってきました。
受付時間は平日の午前九時から午後六時までです。
ソフトウェアの最新版は、公式サイトからダウンロードできます。
夏祭りの夜、浴衣を着て花火大会に出かけました。
日光東照宮の陽明門は、細かな彫刻がとても見事でした。
地域の清掃活動に、多くのボランティアが参加しました。
お正月には家族そろっておせち料理を食べます。
新しいゲームソフトの予約が、今日から始まりました。
アレルギーをお持ちの方は、原材料表示を必ずご確認ください。
朝晩はだいぶ涼しくなり、秋の気配を感じるようになりました。
登山道は整備されていて、初心者でも安心して歩けます。
オンラインショップでは、店舗にない限定商品も取り扱っています。
先日、仙台で牛タン定食を食べてきました。
ワークショップでは、参加者が実際に手を動かしながら学びます。
ミーティングの日程を調整したいので、ご都合をお知らせください。
札幌の雪まつりでは、大きな雪像がいくつも並んでいました。
新しい図書館はカフェが併設されていて、居心地がいいです。
大切な書類は、クラウドにもバックアップを取っておくと安心です。
このレストランは予約が取りにくいことで知られています。
梅干しを漬けるのは、毎年六月の恒例行事です。
部屋の模様替えをして、気分がすっきりしました。
スタッフ一同、皆様のご来店を心よりお待ちしております。
熊本城の天守閣は、復旧工事を経て再び公開されました。
毎朝、コーヒーを淹れながらニュースをチェックしています。
息子が初めて自転車に乗れるようになりました。
電車の中で読んでいたエッセイが面白くて、乗り過ごしそうになりました。
田んぼアートは、毎年違う絵柄で楽しませてくれます。
ブラウザのキャッシュを削除すると、表示が改善される場合があります。
この神社は縁結びのご利益があるといわれています。
週に一度、料理教室で和食の基本を学んでいます。
雪が積もった朝、子どもたちは大喜びで雪だるまを作りました。
展示会では最新のロボット技術が紹介されていました。
旅館の夕食は、地元の食材を使った会席料理でした。
セキュリティ強化のため、パスワードは定期的に変更してください。
商店街の八百屋さんは、いつもおまけをしてくれます。
瀬戸内海の島々をめぐるフェリーの旅は、とても穏やかでした。
去年植えたチューリップの球根から、きれいな花が咲きました。
就職活動に向けて、エントリーシートを書き始めました。
近くの川では、夏になるとホタルが見られます。
この記事が少しでも皆さんのお役に立てば幸いです。
鹿児島の桜島は、今日も小さな噴煙を上げていました。
体調を崩さないよう、十分な睡眠を心がけています。
データベースの移行作業は、予定どおり週末に行います。
祖母の家の縁側で、スイカを食べた夏を思い出します。
限定デザインのマグカップは、発売初日に完売してしまいました。
市役所の窓口は、土曜日の午前中も開いています。
手作りのアクセサリーを、イベントで販売することになりました。
この坂道を上りきると、港町を一望できる展望台があります。
詳しい使い方は、付属の取扱説明書をご覧ください。
冷蔵庫にある材料だけで、簡単な親子丼を作りました。
静かな山寺で、座禅を体験してきました。
ライブのチケットが当選して、今から楽しみで仕方ありません。
春キャベツは甘みがあって、生で食べてもおいしいです。
新しいプロジェクトでは、設計から運用までを担当しています。
雨の日の美術館めぐりも、なかなか趣があります。
先週末は友達と一緒に、話題のテーマパークへ遊びに行きました。
さくらんぼ狩りは、六月中旬から七月上旬が見頃です。
当サイトに掲載されている文章や画像の無断転載を禁止します。
駅の構内に、地元の特産品を集めたお店ができました。
水族館のイルカショーは、子どもにも大人にも大人気です。
年末の大掃除で、使わなくなった家電を処分しました。
昔の写真を整理していたら、懐かしい気持ちになりました。
ご不明な点がございましたら、お気軽にお問い合わせください。
出雲大社では、ほかの神社とは異なる参拝作法があります。
このサイトはWordPressで作られています。
新しいiPhoneの予約はオンラインでも可能です。
Wi-Fiは館内全域で無料でご利用いただけます。
PDF形式の資料は、こちらからダウンロードできます。
Pythonを使ったデータ分析の入門講座を開講しました。
営業時間は10:00から19:00まで、定休日は水曜日です。
送料は全国一律550円（税込）です。
2024年4月1日より、新しい料金体系に移行しました。
USBケーブルは別売りとなっております。
SNSで最新情報を発信していますので、フォローをお願いします。
JR東京駅の八重洲口から徒歩3分です。
メンバー募集中！初心者の方も大歓迎です。
第1回の勉強会には、30名以上の方にご参加いただきました。
お届けまでに1週間ほどお時間をいただく場合があります。
人気ランキングTOP10を毎週更新しています。
"""

# Only in cp932 pages (NEC/IBM extensions): ①②, ㈱, 髙, №, Ⅱ/Ⅲ.
_JA_CP932_SENTENCES = """
①まず、野菜を食べやすい大きさに切ります。
②次に、フライパンで油を熱して肉を炒めます。
㈱山田商事の髙木部長にお話を伺いました。
当店は創業以来、№1の品質を目指しています。
第Ⅱ期の募集は来月から始まります。
髙島さんのご紹介で、㈱青葉工務店に見積もりを依頼しました。
"""

_JA_CP932_CAPTIONS = """
手順①　材料を切る
㈱髙橋製作所の本社ビル
№1の人気商品
第Ⅲ期工事の様子
②盛り付けて完成
"""

_JA_CAPTIONS = """
東京タワーの夜景
満開の桜と五重塔
焼きたてのクロワッサン
店舗外観
新商品のパッケージ
雪に覆われた白川郷の合掌造り
抹茶パフェ
会場の様子
富士山と河口湖
スタッフ集合写真
当店自慢の豚骨ラーメン
紅葉に染まる渓谷
ベランダで育てたミニトマト
セミナー当日の講演風景
商品の使用イメージ
地図：駅からのアクセス
窓辺で眠る猫
夏祭りの花火
おせち料理の重箱
伏見稲荷大社の千本鳥居
新しいオフィスの受付
手作りのアクセサリー
雨上がりの虹
子どもたちの運動会
旅館の露天風呂
日替わりランチの焼き魚定食
木造校舎の廊下
海辺の夕焼け
展示会のブース
グラフ：月別の売上推移
ノートパソコンの外観
カフェの店内
奈良公園の鹿
港町の風景
料理教室の風景
桜島と錦江湾
鎌倉の大仏
菜の花畑
かき氷（いちごミルク）
秋の味覚・松茸ご飯
レトロな喫茶店のクリームソーダ
社長あいさつ
商品画像（正面）
商品画像（側面）
お客様の声
ロゴマーク
イベントのポスター
駅前の商店街
完成した親子丼
兼六園の雪吊り
水族館のイルカショー
田んぼアート
古い町並み
農園で収穫したさつまいも
新幹線と富士山
イメージ写真
プロフィール写真
登山道からの眺め
温泉街の夜
ワークショップの参加者
神社の鳥居
限定デザインのマグカップ
ご当地キャラクター
リニューアルしたトップページ
iPhoneで撮影した夕焼け
Wi-Fi完備のラウンジ
2023年 夏のキャンペーン
"""

_JA_FIGCAPTIONS = """
写真1：会場となった市民ホールの外観
図1　システム構成図
写真は昨年の様子です
左から店長の田中さん、スタッフの佐藤さん
朝霧に包まれた山あいの集落
完成したばかりの新校舎
地元の農家さんが育てた有機野菜
展望台から見下ろした港の夜景
出典：観光協会提供
表紙のイラストは読者の方からいただきました
"""

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
_ZH_KANA_SENTENCES = {
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

_HEADINGS = {
    "ja": ("お知らせ", "春のおすすめスポット", "新商品のご案内", "旅行記", "今日のごはん", "イベントレポート",
           "よくあるご質問", "スタッフブログ", "季節の便り", "開発日誌", "アクセス", "店舗情報"),
    "zh-hans": ("最新动态", "新品推荐", "旅行日记", "今日美食", "活动回顾", "常见问题", "公司简介",
                "联系方式"),
    "zh-hant": ("最新消息", "新品推薦", "旅遊日記", "今日美食", "活動回顧", "常見問題", "公司簡介",
                "聯絡方式"),
    "ko": ("공지사항", "신상품 안내", "여행 후기", "오늘의 메뉴", "행사 소식", "자주 묻는 질문", "회사 소개",
           "오시는 길"),
    "en": ("News", "New arrivals", "Travel notes", "Today's menu", "Event report", "FAQ", "About us",
           "Access"),
}

_SITES = {
    "ja": ("さくら日記", "山田商店", "まちあるき通信", "暮らしのメモ帳", "東京グルメ探訪", "テックノート",
           "ひだまり写真館", "みどり工務店"),
    "zh-hans": ("生活日记", "美食天下", "旅行笔记", "科技资讯", "家居生活馆"),
    "zh-hant": ("生活日記", "美食天地", "旅遊筆記", "科技新知", "小城故事"),
    "ko": ("여행 일기", "맛집 탐방", "생활 정보", "테크 뉴스", "우리 동네 소식"),
    "en": ("Daily Notes", "Green Kitchen", "Travel Journal", "Tech Corner", "City Guide"),
}

_NAV = {
    "ja": ("ホーム", "新着情報", "商品一覧", "会社概要", "ブログ", "アクセス", "お問い合わせ"),
    "zh-hans": ("首页", "新闻中心", "产品展示", "关于我们", "联系我们", "帮助中心"),
    "zh-hant": ("首頁", "最新消息", "產品介紹", "關於我們", "聯絡我們", "常見問題"),
    "ko": ("홈", "공지사항", "상품 목록", "회사 소개", "고객센터", "자주 묻는 질문"),
    "en": ("Home", "News", "Products", "About us", "Contact", "FAQ"),
}

_FOOTER = {
    "ja": ("プライバシーポリシー", "利用規約", "サイトマップ", "特定商取引法に基づく表記"),
    "zh-hans": ("隐私政策", "使用条款", "网站地图", "版权所有"),
    "zh-hant": ("隱私權政策", "使用條款", "網站地圖", "版權所有"),
    "ko": ("개인정보처리방침", "이용약관", "사이트맵", "제휴 문의"),
    "en": ("Privacy Policy", "Terms of Use", "Sitemap", "Careers"),
}

_HOSTS = {
    "ja": ("www.sakura-nikki.example.jp", "blog.yamada-shoten.example.co.jp", "tabi.example.ne.jp",
           "news.example.or.jp", "shop.example.jp"),
    "zh-hans": ("www.example.cn", "blog.example.com.cn", "news.example.cn"),
    "zh-hant": ("www.example.com.tw", "blog.example.tw", "www.example.com.hk"),
    "ko": ("www.example.co.kr", "blog.example.kr", "news.example.kr"),
    "en": ("www.example.com", "blog.example.org", "news.example.net"),
}

_CDN_HOSTS = {
    "ja": "cdn.example.jp", "zh-hans": "img.example.cn", "zh-hant": "img.example.tw",
    "ko": "img.example.kr", "en": "cdn.example.com",
}

_CSS = (
    "body{margin:0;font-family:sans-serif;line-height:1.8;color:#333}\n"
    ".site-header{background:#fff;border-bottom:1px solid #ddd;padding:8px 16px}\n"
    "img{max-width:100%;height:auto}\n.entry-content p{margin:0 0 1.5em}\n"
    "@media (max-width:600px){.sidebar{display:none}}",
    ".nav li{display:inline-block;margin-right:12px}\nfigure{margin:0 0 24px}\n"
    "figcaption{font-size:12px;color:#666}\n.footer{background:#222;color:#eee}",
)

_JS_HEAD = (
    "window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments);}\n"
    "gtag('js',new Date());gtag('config','G-EXAMPLE01');",
    "var _paq=window._paq=window._paq||[];_paq.push(['trackPageView']);\n"
    "(function(){var u='https://stats.example.com/';_paq.push(['setSiteId','3']);})();",
)

# Decoy: <img> markup inside a script string is text, not an element.
_JS_BODY = (
    "document.addEventListener('DOMContentLoaded',function(){\n"
    "  var imgs=document.querySelectorAll('img[data-src]');\n"
    "  for(var i=0;i<imgs.length;i++){imgs[i].src=imgs[i].getAttribute('data-src');}\n"
    "  var adTpl='<img src=\"/ads/banner-728x90.jpg\" alt=\"advertisement\" width=\"728\" height=\"90\">';\n"
    "  if(window.showAds){document.getElementById('ad').innerHTML=adTpl;}\n"
    "});",
    "(function(d){var s=d.createElement('script');s.async=true;\n"
    "  s.src='https://platform.example.com/widgets.js';d.body.appendChild(s);})(document);",
)

_SPACER_NAMES = ("spacer.gif", "pixel.gif", "blank.gif", "1x1.gif", "transparent.gif", "clear.gif")
_SKIPPED_EXTENSIONS = (".svg", ".svgz", ".ico")
_GIF_1X1 = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
_PNG_DATA = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR").decode()

JA_ENCODINGS = ("utf-8", "shift_jis", "cp932", "euc-jp", "iso-2022-jp")
CHARSET_MODES = ("header", "meta", "http-equiv", "none", "bom", "conflict")

# Charset labels written in pages (WHATWG labels), cycled deterministically per page.
_LABELS = {
    "utf-8": ("UTF-8", "utf-8", "utf8"),
    "shift_jis": ("Shift_JIS", "shift_jis", "SJIS"),
    "cp932": ("Shift_JIS", "Windows-31J", "MS932", "x-sjis"),
    "euc-jp": ("EUC-JP", "euc-jp", "x-euc-jp"),
    "iso-2022-jp": ("ISO-2022-JP", "iso-2022-jp", "csISO2022JP"),
    "gb18030": ("GB18030", "GBK", "gb2312"),
    "big5": ("Big5", "big5"),
    "euc-kr": ("EUC-KR", "euc-kr"),
    "cp1252": ("windows-1252", "ISO-8859-1"),
}

_DEFAULT_ENCODINGS = {
    "ja": JA_ENCODINGS,
    "zh-hans": ("utf-8", "gb18030"),
    "zh-hant": ("big5", "utf-8"),
    "ko": ("utf-8", "euc-kr"),
    "en": ("utf-8", "cp1252"),
}


def _lines(block: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in block.strip().splitlines() if line.strip())


@dataclass(frozen=True)
class _Pool:
    sentences: tuple[str, ...]
    captions: tuple[str, ...]
    figcaptions: tuple[str, ...]
    joiner: str  # between sentences: nothing for CJK, a space for ko/en

    @functools.cached_property
    def mean_len(self) -> float:
        return sum(map(len, self.sentences)) / len(self.sentences) + len(self.joiner)


@functools.cache
def _pool(variant: str) -> _Pool:
    """Text pool for a language variant: ja, zh-hans, zh-hant, ko, en."""
    if variant == "ja":
        return _Pool(_lines(_JA_SENTENCES), _lines(_JA_CAPTIONS), _lines(_JA_FIGCAPTIONS), "")
    if variant == "zh-hans":
        caps = _lines(_ZH_HANS_CAPTIONS)
        return _Pool(_lines(_ZH_HANS_SENTENCES), caps, caps, "")
    if variant == "zh-hant":
        caps = _lines(_ZH_HANT_CAPTIONS)
        return _Pool(_lines(_ZH_HANT_SENTENCES), caps, caps, "")
    if variant == "ko":
        caps = _lines(_KO_CAPTIONS)
        return _Pool(_lines(_KO_SENTENCES), caps, caps, " ")
    if variant == "en":
        caps = _lines(_EN_CAPTIONS)
        return _Pool(_lines(_EN_SENTENCES), caps, caps, " ")
    raise ValueError(f"unknown language variant {variant!r}")


@functools.cache
def _bytes_per_char(variant: str, encoding: str) -> float:
    """Average encoded size of pool text, used to size pages without re-encoding them."""
    text = "".join(_pool(variant).sentences)
    return len(text.encode(encoding, "xmlcharrefreplace")) / len(text)


# Caption variants for the special caption kinds, per language family.
_SPECIAL_CAPTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    # raw HTML attribute sources (entities are decoded by the parser)
    "entities": {
        "ja": ("トム&amp;ジェリー展 &lt;特別編&gt;", "&quot;限定&quot;モデル", "価格&nbsp;1,980円",
               "&#x2605;人気No.1&#x2605;", "Q&amp;A コーナー"),
        "zh": ("汤姆&amp;杰瑞 &lt;特别版&gt;", "&quot;限量&quot;款式", "价格&nbsp;99元"),
        "zh-hant": ("湯姆&amp;傑利 &lt;特別版&gt;", "&quot;限量&quot;款式", "價格&nbsp;99元"),
        "ko": ("톰&amp;제리 &lt;특별편&gt;", "&quot;한정&quot; 모델", "가격&nbsp;9,900원"),
        "en": ("Tom &amp; Jerry &lt;special&gt;", "&quot;Limited&quot; edition", "Price&nbsp;$19"),
    },
    "whitespace": {
        "ja": ("\n      春の\n      新作\t コレクション\n    ", "  まぐろ　丼  ", "\n 駅前の\n\n 風景 "),
        "zh": ("\n    春季\n    新品  上市\n  ", "  西湖  风景  "),
        "zh-hant": ("\n    春季\n    新品  上市\n  ", "  日月潭  風景  "),
        "ko": ("\n    봄\n    신상품   컬렉션\n  ", "  남산   타워  "),
        "en": ("\n    Spring\n    collection   2024\n  ", "  Old   town  "),
    },
    "fullwidth": {
        "ja": ("ＮＥＷ！春の新作コレクション", "ＳＡＬＥ　最大５０％ＯＦＦ", "ＴＯＫＹＯ　２０２４",
               "ＣＡＦＥ ＭＥＮＵ"),
        "zh": ("ＮＥＷ新品上市", "ＳＡＬＥ５０％"),
        "ko": ("ＮＥＷ 신상품", "ＳＡＬＥ５０％"),
        "en": ("ＮＥＷ ＡＲＲＩＶＡＬＳ",),
    },
    "repeated": {
        "ja": ("ああああああああああああああああ", "！！！！！！！！！！！！", "ーーーーーーーーーーーーーー",
               "wwwwwwwwwwwwwwwwwwww", "★★★★★★★★★★★★"),
        "zh": ("哈哈哈哈哈哈哈哈哈哈哈哈哈哈", "！！！！！！！！！！"),
        "ko": ("ㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋ", "!!!!!!!!!!!!!!!!"),
        "en": ("aaaaaaaaaaaaaaaaaaaaaa", "!!!!!!!!!!!!!!!!!!"),
    },
    "emoji": {
        "ja": ("かわいい猫😺🐾", "今日のランチ🍜✨", "お花見🌸🌸🌸", "🎉祝！開店🎉"),
        "zh": ("可爱的猫咪😺", "今天的午餐🍜"),
        "zh-hant": ("可愛的貓咪😺", "今天的午餐🍜"),
        "ko": ("귀여운 고양이😺", "오늘의 점심🍜"),
        "en": ("Cute cat 😺", "Lunch time 🍜"),
    },
    "other-lang": {
        "ja": ("Tokyo skyline at night", "Cherry blossoms in Ueno Park"),
        "zh": ("Shanghai skyline", "West Lake"),
        "ko": ("Seoul at night", "Jeju beach"),
        "en": ("Vue de la tour Eiffel la nuit", "Playa de la Barceloneta"),  # no kana on en pages
    },
}


# --------------------------------------------------------------------------------------------
# Extraction rules (reference implementation used to compute expected_pairs)
# --------------------------------------------------------------------------------------------


def srcset_best(srcset: str) -> str:
    """Url of the srcset candidate with the largest ``w``/``x`` descriptor (none = 1x); first wins ties."""
    best_url, best_value = "", -1.0
    for part in srcset.split(","):
        tokens = part.split()
        if not tokens:
            continue
        value = 1.0
        if len(tokens) > 1 and tokens[1][-1:] in ("w", "x"):
            try:
                value = float(tokens[1][:-1])
            except ValueError:
                continue
        if value > best_value:
            best_url, best_value = tokens[0], value
    return best_url


def _is_small(value: str | None) -> bool:
    if value is None:
        return False
    try:
        return float(value.strip()) < 10
    except ValueError:
        return False


def expected_pair(
    attrs: Mapping[str, str], base_url: str, figcaption: str | None = None
) -> tuple[str, str] | None:
    """Apply the extraction rules to one ``<img>`` (decoded attribute values, lowercase names).

    ``base_url`` is the page url, or the ``<base href>`` already resolved against it;
    ``figcaption`` is the raw text of the nearest enclosing figure's figcaption, if any.
    """
    candidates = [attrs.get(name) for name in ("data-src", "data-original", "data-lazy-src", "src")]
    candidates.append(srcset_best(attrs["srcset"]) if "srcset" in attrs else None)
    candidates.append(srcset_best(attrs["data-srcset"]) if "data-srcset" in attrs else None)
    raw = next((c for c in candidates if c and c.strip() and not c.strip().lower().startswith("data:")), None)
    if raw is None:
        return None
    url = urljoin(base_url, raw.strip()).split("#", 1)[0]
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https"):
        return None
    if _is_small(attrs.get("width")) or _is_small(attrs.get("height")):
        return None
    name = parsed.path.rsplit("/", 1)[-1].lower()
    if name in _SPACER_NAMES or name.endswith(_SKIPPED_EXTENSIONS):
        return None
    caption = " ".join((figcaption or "").split()) or " ".join(attrs.get("alt", "").split())
    return (url, caption) if caption else None


# --------------------------------------------------------------------------------------------
# Image snippets
# --------------------------------------------------------------------------------------------

Attr = tuple[str, str | None]  # (name, raw HTML source of the value or None for a bare attribute)


@dataclass
class _Img:
    attrs: list[Attr]
    figcaption: str | None = None  # decoded figcaption text of the enclosing figure
    upper: bool = False  # write tag and attribute names in upper case
    unquoted: bool = False

    def html(self) -> str:
        parts = ["IMG" if self.upper else "img"]
        for name, value in self.attrs:
            name = name.upper() if self.upper else name
            if value is None:
                parts.append(name)
            elif self.unquoted:
                parts.append(f"{name}={value}")
            else:
                parts.append(f'{name}="{value}"')
        return "<" + " ".join(parts) + ">"

    def decoded(self) -> dict[str, str]:
        return {name.lower(): _html.unescape(value or "") for name, value in self.attrs}


def _esc(text: str) -> str:
    return _html.escape(text, quote=True)


class _Ctx:
    """Per-page state shared by the image kinds."""

    def __init__(self, rng: random.Random, index: int, lang: str, variant: str, encoding: str) -> None:
        self.rng = rng
        self.index = index
        self.lang = lang
        self.variant = variant
        self.encoding = encoding
        self.pool = _pool(variant)
        self.cdn = _CDN_HOSTS[variant]
        self._serial = itertools.count(1)
        self._cp932_pending = encoding == "cp932"

    def slug(self) -> str:
        n = next(self._serial)
        prefix = ("photo", "img", "pic", "entry", "item", "thumb")[(self.index + n) % 6]
        return f"{prefix}-{self.index}-{n:02d}"

    def caption(self) -> str:
        if self._cp932_pending:  # first caption of a cp932 page uses cp932-only characters
            self._cp932_pending = False
            return self.rng.choice(_lines(_JA_CP932_CAPTIONS))
        return self.rng.choice(self.pool.captions)

    def alt(self) -> Attr:
        return ("alt", _esc(self.caption()))

    def special(self, kind: str) -> str:
        table = _SPECIAL_CAPTIONS[kind]
        return self.rng.choice(table.get(self.variant) or table.get(self.lang) or table["en"])

    def size(self) -> list[Attr]:
        w = self.rng.choice((320, 480, 640, 800, 1200))
        return [("width", str(w)), ("height", str(w * 3 // 4))]


Snippet = tuple[str, list[_Img]]
_KINDS: dict[str, Callable[[_Ctx], Snippet]] = {}


def _kind(name: str) -> Callable[[Callable[[_Ctx], Snippet]], Callable[[_Ctx], Snippet]]:
    def register(fn: Callable[[_Ctx], Snippet]) -> Callable[[_Ctx], Snippet]:
        _KINDS[name] = fn
        return fn

    return register


def _single(img: _Img, wrap_p: bool = True) -> Snippet:
    return (f"<p>{img.html()}</p>" if wrap_p else img.html()), [img]


@_kind("rel-root")
def _k_rel_root(c: _Ctx) -> Snippet:
    return _single(_Img([("src", f"/wp-content/uploads/2023/{c.index % 12 + 1:02d}/{c.slug()}.jpg"),
                         c.alt(), *c.size()]))


@_kind("rel-path")
def _k_rel_path(c: _Ctx) -> Snippet:
    return _single(_Img([("src", f"images/{c.slug()}.png"), c.alt()]))


@_kind("rel-dotdot")
def _k_rel_dotdot(c: _Ctx) -> Snippet:
    return _single(_Img([("class", "thumb"), ("src", f"../img/{c.slug()}.jpeg"), c.alt()]))


@_kind("absolute")
def _k_absolute(c: _Ctx) -> Snippet:
    return _single(_Img([("src", f"https://{c.cdn}/media/{c.slug()}.webp"), c.alt(), *c.size()]))


@_kind("protocol-relative")
def _k_proto(c: _Ctx) -> Snippet:
    return _single(_Img([("src", f"//{c.cdn}/p/{c.slug()}.jpg"), c.alt(), ("loading", "lazy")]))


@_kind("query-amp")
def _k_query(c: _Ctx) -> Snippet:
    return _single(_Img([("src", f"/thumb.php?id={c.slug()}&amp;size=large"), c.alt()]))


@_kind("fragment")
def _k_fragment(c: _Ctx) -> Snippet:
    return _single(_Img([("src", f"/img/{c.slug()}.JPG#main"), c.alt()]))


@_kind("uppercase")
def _k_upper(c: _Ctx) -> Snippet:
    return _single(_Img([("src", f"/IMAGES/{c.slug()}.GIF"), c.alt()], upper=True))


@_kind("unquoted")
def _k_unquoted(c: _Ctx) -> Snippet:
    cap = "".join(c.caption().split())
    if any(ch in cap for ch in "\"'=<>`&"):
        cap = c.pool.captions[0].replace(" ", "")
    return _single(_Img([("src", f"/img/{c.slug()}.jpg"), ("alt", cap)], unquoted=True))


@_kind("percent-encoded")
def _k_percent(c: _Ctx) -> Snippet:
    # %E5%86%99%E7%9C%9F is 写真 in UTF-8; urljoin keeps it as is.
    return _single(_Img([("src", f"/uploads/%E5%86%99%E7%9C%9F-{c.slug()}.jpg"), c.alt()]))


def _figure(inner: str, figcaption_html: str) -> str:
    return f'<figure class="wp-block-image">\n{inner}\n<figcaption>{figcaption_html}</figcaption>\n</figure>'


@_kind("figure")
def _k_figure(c: _Ctx) -> Snippet:
    text = c.rng.choice(c.pool.figcaptions)
    img = _Img([("src", f"/wp-content/uploads/{c.slug()}.jpg"), c.alt(), *c.size()], figcaption=text)
    return _figure(img.html(), _esc(text)), [img]


@_kind("figure-no-alt")
def _k_figure_noalt(c: _Ctx) -> Snippet:
    text = c.rng.choice(c.pool.figcaptions)
    img = _Img([("src", f"/photos/{c.slug()}.jpg")], figcaption=text)
    return _figure(img.html(), _esc(text)), [img]


@_kind("figure-empty-caption")
def _k_figure_empty(c: _Ctx) -> Snippet:
    img = _Img([("src", f"/photos/{c.slug()}.png"), c.alt()], figcaption=" \n ")
    return _figure(img.html(), " \n "), [img]


@_kind("figure-nested")
def _k_figure_nested(c: _Ctx) -> Snippet:
    # figcaption before the img, markup inside it, img wrapped in a link; separators are whitespace
    # so the collapsed text does not depend on how the extractor joins text nodes.
    head, body = c.rng.choice(c.pool.figcaptions), c.caption()
    img = _Img([("src", f"/gallery/{c.slug()}.jpg"), c.alt()], figcaption=f"{head} {body}")
    html = (f'<figure>\n<figcaption>\n  <strong>{_esc(head)}</strong>\n'
            f'  <span class="note">{_esc(body)}</span>\n</figcaption>\n'
            f'<a href="/gallery/large/{c.index}.jpg">{img.html()}</a>\n</figure>')
    return html, [img]


@_kind("figure-two-images")
def _k_figure_two(c: _Ctx) -> Snippet:
    text = c.rng.choice(c.pool.figcaptions)
    imgs = [_Img([("src", f"/gallery/{c.slug()}.jpg"), c.alt()], figcaption=text) for _ in range(2)]
    return _figure("\n".join(i.html() for i in imgs), _esc(text)), imgs


@_kind("figure-no-figcaption")
def _k_figure_nocap(c: _Ctx) -> Snippet:
    img = _Img([("src", f"/photos/{c.slug()}.jpg"), c.alt()])
    return f"<figure>{img.html()}</figure>", [img]


@_kind("lazy-data-src")
def _k_lazy_data_src(c: _Ctx) -> Snippet:
    return _single(_Img([("src", _GIF_1X1), ("data-src", f"/uploads/{c.slug()}.jpg"), ("class", "lazyload"),
                         c.alt()]))


@_kind("lazy-data-original")
def _k_lazy_original(c: _Ctx) -> Snippet:
    return _single(_Img([("src", "/common/img/loading.gif"), ("data-original", f"/uploads/{c.slug()}.jpg"),
                         c.alt()]))


@_kind("lazy-data-lazy-src")
def _k_lazy_lazy_src(c: _Ctx) -> Snippet:
    return _single(_Img([("src", _PNG_DATA), ("data-lazy-src", f"https://{c.cdn}/lazy/{c.slug()}.png"),
                         c.alt()]))


@_kind("lazy-empty-data-src")
def _k_lazy_empty(c: _Ctx) -> Snippet:
    return _single(_Img([("data-src", ""), ("src", f"/uploads/{c.slug()}.jpg"), c.alt()]))


@_kind("lazy-data-uri-data-src")
def _k_lazy_data_uri(c: _Ctx) -> Snippet:
    return _single(_Img([("data-src", _GIF_1X1), ("src", f"/uploads/{c.slug()}.jpg"), c.alt()]))


@_kind("srcset-w")
def _k_srcset_w(c: _Ctx) -> Snippet:
    s = c.slug()
    srcset = f"/img/{s}-480.jpg 480w,\n  /img/{s}-1200.jpg 1200w, /img/{s}-800.jpg 800w"
    return _single(_Img([("srcset", srcset), ("sizes", "(max-width: 600px) 480px, 800px"), c.alt()]))


@_kind("srcset-x")
def _k_srcset_x(c: _Ctx) -> Snippet:
    s = c.slug()
    return _single(_Img([("srcset", f"/img/{s}.png, /img/{s}-3x.png 3x, /img/{s}-2x.png 2x"), c.alt()]))


@_kind("src-and-srcset")
def _k_src_srcset(c: _Ctx) -> Snippet:
    s = c.slug()
    return _single(_Img([("src", f"/img/{s}-small.jpg"), ("srcset", f"/img/{s}-large.jpg 2x"), c.alt()]))


@_kind("data-srcset")
def _k_data_srcset(c: _Ctx) -> Snippet:
    s = c.slug()
    srcset = f"/img/{s}-640.jpg 640w, /img/{s}-1280.jpg 1280w"
    return _single(_Img([("src", _GIF_1X1), ("data-srcset", srcset), c.alt()]))


@_kind("skip-data-only")
def _k_skip_data(c: _Ctx) -> Snippet:
    return _single(_Img([("src", _PNG_DATA), c.alt()]))


@_kind("skip-scheme")
def _k_skip_scheme(c: _Ctx) -> Snippet:
    src = ("javascript:void(0)", "mailto:info@example.jp", f"ftp://ftp.example.jp/pub/{c.slug()}.jpg",
           "about:blank")[c.index % 4]
    return _single(_Img([("src", src), c.alt()]))


@_kind("skip-tracker-1x1")
def _k_skip_tracker(c: _Ctx) -> Snippet:
    return _single(_Img([("src", f"https://stats.example.com/t.gif?p={c.slug()}"), ("width", "1"),
                         ("height", "1"), ("alt", "tracker"), ("style", "display:none")]), wrap_p=False)


@_kind("skip-small-width")
def _k_skip_small(c: _Ctx) -> Snippet:
    return _single(_Img([("src", f"/img/{c.slug()}.png"), ("width", "5"), c.alt()]))


@_kind("skip-spacer")
def _k_skip_spacer(c: _Ctx) -> Snippet:
    name = _SPACER_NAMES[c.index % len(_SPACER_NAMES)]
    if c.index % 4 == 1:
        name = name.capitalize().replace(".gif", ".GIF")
    return _single(_Img([("src", f"/common/img/{name}"), c.alt()]), wrap_p=False)


@_kind("skip-icon")
def _k_skip_icon(c: _Ctx) -> Snippet:
    name = ("logo.svg", "favicon.ico", "icon-mail.SVG", "badge.svgz")[c.index % 4]
    return _single(_Img([("src", f"/assets/{name}"), c.alt()]))


@_kind("skip-no-alt")
def _k_skip_noalt(c: _Ctx) -> Snippet:
    return _single(_Img([("src", f"/img/{c.slug()}.jpg"), *c.size()]))


@_kind("skip-empty-alt")
def _k_skip_emptyalt(c: _Ctx) -> Snippet:
    return _single(_Img([("src", f"/img/{c.slug()}.jpg"), ("alt", ("", "  \n  ")[c.index % 2])]))


@_kind("caption-entities")
def _k_cap_entities(c: _Ctx) -> Snippet:
    return _single(_Img([("src", f"/img/{c.slug()}.jpg"), ("alt", c.special("entities"))]))


@_kind("caption-whitespace")
def _k_cap_ws(c: _Ctx) -> Snippet:
    return _single(_Img([("src", f"/img/{c.slug()}.jpg"), ("alt", _esc(c.special("whitespace")))]))


@_kind("caption-fullwidth")
def _k_cap_fw(c: _Ctx) -> Snippet:
    return _single(_Img([("src", f"/img/{c.slug()}.jpg"), ("alt", _esc(c.special("fullwidth")))]))


@_kind("caption-filename")
def _k_cap_filename(c: _Ctx) -> Snippet:
    n = c.rng.randrange(10000)
    cap = (f"IMG_{n:04d}.JPG", f"DSC{n:05d}.jpg", f"P10{n:05d}.JPG", f"image{n % 100:03d}.png")[c.index % 4]
    return _single(_Img([("src", f"/img/{c.slug()}.jpg"), ("alt", cap)]))


@_kind("caption-hash")
def _k_cap_hash(c: _Ctx) -> Snippet:
    cap = f"{c.rng.getrandbits(128):032x}"
    return _single(_Img([("src", f"/img/{cap[:8]}-{c.slug()}.jpg"), ("alt", cap)]))


@_kind("caption-repeated")
def _k_cap_repeated(c: _Ctx) -> Snippet:
    return _single(_Img([("src", f"/img/{c.slug()}.jpg"), ("alt", _esc(c.special("repeated")))]))


@_kind("caption-emoji")
def _k_cap_emoji(c: _Ctx) -> Snippet:
    return _single(_Img([("src", f"/img/{c.slug()}.jpg"), ("alt", _esc(c.special("emoji")))]))


@_kind("caption-long")
def _k_cap_long(c: _Ctx) -> Snippet:
    cap = c.pool.joiner.join(c.rng.choices(c.pool.sentences, k=5))
    return _single(_Img([("src", f"/img/{c.slug()}.jpg"), ("alt", _esc(cap))]))


@_kind("caption-other-language")
def _k_cap_other(c: _Ctx) -> Snippet:
    return _single(_Img([("src", f"/img/{c.slug()}.jpg"), ("alt", _esc(c.special("other-lang")))]))


def _rotation() -> tuple[str, ...]:
    """All kinds, with plain ones interleaved so that most images yield a pair."""
    plain = ("rel-root", "absolute", "figure", "lazy-data-src")
    special = [k for k in _KINDS if k not in plain]
    out: list[str] = []
    for i, name in enumerate(special):
        out.append(plain[i % len(plain)])
        out.append(name)
    return tuple(out)


IMAGE_KINDS: tuple[str, ...] = _rotation()


# --------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------


@dataclass
class SyntheticPage:
    url: str
    lang: str
    encoding: str
    html: bytes
    http_charset: str | None
    expected_pairs: list[tuple[str, str]]
    charset_in: str = "header"
    meta_charset: str | None = None  # charset written in a <meta> (may be wrong in "conflict")
    base_href: str | None = None
    tests: list[str] = field(default_factory=list)  # what this page exercises

    def content_type(self) -> str:
        if self.http_charset is None:
            return "text/html"
        return f"text/html; charset={self.http_charset}"

    def meta(self) -> dict:
        """JSON-friendly description without the html bytes."""
        return {
            "url": self.url, "lang": self.lang, "encoding": self.encoding, "http_charset": self.http_charset,
            "meta_charset": self.meta_charset, "charset_in": self.charset_in, "base_href": self.base_href,
            "n_bytes": len(self.html), "tests": list(self.tests),
            "expected_pairs": [list(p) for p in self.expected_pairs],
        }


def _variant(lang: str, encoding: str | None, index: int) -> str:
    if lang != "zh":
        return lang
    if encoding == "gb18030":
        return "zh-hans"
    if encoding == "big5":
        return "zh-hant"
    return ("zh-hans", "zh-hant")[index % 2]


def _page_url(rng: random.Random, index: int, variant: str) -> str:
    host = rng.choice(_HOSTS[variant])
    scheme = "https" if index % 3 else "http"
    path = (f"/blog/2023/{index % 12 + 1:02d}/entry-{index}.html", f"/news/{index}/",
            f"/products/item.php?id={index}&lang={variant[:2]}", f"/articles/{index}")[index % 4]
    return f"{scheme}://{host}{path}"


def _base_href(index: int) -> str | None:
    # Every sixth page has a <base>; half absolute, half relative to the page url.
    if index % 6 != 5:
        return None
    return "https://static.example.jp/base/" if index % 12 == 5 else f"/assets/v{index % 4 + 1}/"


def _charset_decl(mode: str, label: str, encoding: str) -> tuple[str | None, str | None, str]:
    """(http charset, meta charset, head markup) for a declaration mode."""
    if mode == "header":
        return label, None, ""
    if mode == "meta":
        return None, label, f'<meta charset="{label}">'
    if mode == "http-equiv":
        return None, label, f'<meta http-equiv="Content-Type" content="text/html; charset={label}">'
    if mode in ("none", "bom"):
        return None, None, ""
    if mode == "conflict":
        wrong = "Shift_JIS" if encoding == "utf-8" else "ISO-8859-1"
        return label, wrong, f'<meta charset="{wrong}">'
    raise ValueError(f"unknown charset_in {mode!r}")


def _paragraphs(rng: random.Random, variant: str, n_chars: int, extra: Sequence[str] = ()) -> list[str]:
    """Paragraph texts totalling about n_chars characters; `extra` sentences are spliced in."""
    pool = _pool(variant)
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


def _nav(variant: str) -> str:
    items = "".join(f'<li><a href="/{i}/">{_esc(t)}</a></li>' for i, t in enumerate(_NAV[variant]))
    return f'<header class="site-header">\n<nav class="nav"><ul>{items}</ul></nav>\n</header>'


def _footer(variant: str, site: str) -> str:
    links = " | ".join(f'<a href="/page/{i}">{_esc(t)}</a>' for i, t in enumerate(_FOOTER[variant]))
    return (f'<footer class="footer">\n<p>{links}</p>\n'
            f"<p>Copyright &copy; 2024 {_esc(site)} All Rights Reserved.</p>\n</footer>")


def make_page(
    rng: random.Random,
    index: int,
    lang: str,
    encoding: str | None = None,
    n_images: int = 18,
    target_bytes: int = 20_000,
    charset_in: str = "header",
) -> SyntheticPage:
    """Build one page; ``expected_pairs`` follows the extraction rules in the module docstring.

    ``encoding`` defaults to a per-language cycle driven by ``index``; ``charset_in`` is one of
    ``CHARSET_MODES``. Zh pages are simplified for gb18030, traditional for big5, alternate for utf-8.
    """
    variant = _variant(lang, encoding, index)
    encs = _DEFAULT_ENCODINGS[variant]
    encoding = encoding or encs[index % len(encs)]
    if charset_in == "bom" and encoding != "utf-8":
        raise ValueError("a BOM is only used for utf-8 pages")
    labels = _LABELS.get(encoding, (encoding,))
    label = labels[index % len(labels)]
    http_charset, meta_charset, decl = _charset_decl(charset_in, label, encoding)
    url = _page_url(rng, index, variant)
    base_href = _base_href(index)
    base_url = urljoin(url, base_href) if base_href else url
    site = rng.choice(_SITES[variant])
    heading = rng.choice(_HEADINGS[variant])
    tests = [f"charset:{charset_in}", f"encoding:{encoding}"]
    if base_href:
        tests.append("base-href")

    ctx = _Ctx(rng, index, lang, variant, encoding)
    kinds = [IMAGE_KINDS[(index * n_images + j) % len(IMAGE_KINDS)] for j in range(n_images)]
    snippets = [_KINDS[k](ctx) for k in kinds]
    imgs = [img for _, group in snippets for img in group]
    pairs = [p for img in imgs if (p := expected_pair(img.decoded(), base_url, img.figcaption))]
    tests += sorted(set(kinds))

    extra: list[str] = []
    if encoding == "cp932":
        extra += rng.sample(_lines(_JA_CP932_SENTENCES), 2)
        tests.append("cp932-only-chars")
    if lang == "zh" and index % 7 == 3:
        extra.append(_ZH_KANA_SENTENCES[variant])
        tests.append("zh-with-katakana")

    title = f"{heading} | {site}"
    decoy = ""
    if index % 3 == 0:  # an <img> inside a comment is not an element
        decoy = f'<!-- <img src="/old/header-{index}.jpg" alt="{_esc(ctx.pool.captions[1])}"> -->\n'
        tests.append("decoy-comment")
    head = "\n".join(filter(None, [
        decl, '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title>", f'<base href="{base_href}">' if base_href else "",
        '<link rel="stylesheet" href="/css/style.css">',
        f"<style>\n{_CSS[index % len(_CSS)]}\n</style>",
        f"<script>\n{_JS_HEAD[index % len(_JS_HEAD)]}\n</script>",
    ]))
    top = (f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n{head}\n</head>\n<body>\n{_nav(variant)}\n'
           f'<main>\n<article class="entry-content">\n<h1>{_esc(heading)}</h1>\n{decoy}')
    bottom = (f"</article>\n</main>\n{_footer(variant, site)}\n"
              f"<script>\n{_JS_BODY[index % len(_JS_BODY)]}\n</script>\n</body>\n</html>\n")
    skeleton = top + bottom + "\n".join(s for s, _ in snippets)
    bpc = _bytes_per_char(variant, encoding)
    fixed = len(skeleton.encode(encoding, "xmlcharrefreplace"))
    n_chars = max(0, int((target_bytes - fixed) / bpc))
    paras = _paragraphs(rng, variant, n_chars, extra)

    # Interleave images between paragraphs, with a sub-heading now and then.
    body: list[str] = []
    per = max(1, len(paras) // max(1, len(snippets)))
    s_iter = iter(snippets)
    for i, p in enumerate(paras):
        if i and i % 7 == 0:
            body.append(f"<h2>{_esc(ctx.pool.captions[i % len(ctx.pool.captions)])}</h2>")
        body.append(f"<p>{p}</p>")  # pool text has no markup characters (checked in _pool)
        if i % per == per - 1:
            body.append(next(s_iter, ("", []))[0])
    body.extend(s for s, _ in s_iter)
    text = top + "\n".join(filter(None, body)) + "\n" + bottom
    data = text.encode(encoding, "xmlcharrefreplace")
    if charset_in == "bom":
        data = b"\xef\xbb\xbf" + data
    return SyntheticPage(url=url, lang=lang, encoding=encoding, html=data, http_charset=http_charset,
                         expected_pairs=pairs, charset_in=charset_in, meta_charset=meta_charset,
                         base_href=base_href, tests=tests)


# --------------------------------------------------------------------------------------------
# WARC records
# --------------------------------------------------------------------------------------------

DEFAULT_DATE = "2024-02-20T12:00:00Z"
_EPOCH = _dt.datetime(2024, 2, 20, 12, 0, 0, tzinfo=_dt.UTC)
HttpHeaders = Mapping[str, str] | Sequence[tuple[str, str]]


def _date(offset_s: int) -> str:
    return (_EPOCH + _dt.timedelta(seconds=offset_s)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record_id(*parts: object) -> str:
    key = ":".join(map(str, parts))
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'waon-synthetic:' + key)}>"


def _sha1(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode()


def warc_record(
    warc_type: str,
    block: bytes,
    content_type: str,
    url: str | None = None,
    record_id: str | None = None,
    date: str = DEFAULT_DATE,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """Raw bytes of one WARC/1.0 record (header, block, trailing CRLFCRLF)."""
    headers = [("WARC-Type", warc_type), ("WARC-Date", date),
               ("WARC-Record-ID", record_id or _record_id(warc_type, url or "", date))]
    if url is not None:
        headers.append(("WARC-Target-URI", url))
    headers += list(extra_headers)
    headers += [("WARC-Block-Digest", _sha1(block)), ("Content-Type", content_type),
                ("Content-Length", str(len(block)))]
    head = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("utf-8") + block + b"\r\n\r\n"


def http_response_block(status: int, headers: HttpHeaders, body: bytes, reason: str | None = None) -> bytes:
    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    reason = reason or {200: "OK", 301: "Moved Permanently", 404: "Not Found"}.get(status, "Unknown")
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items) + "\r\n"
    return head.encode("latin-1") + body


def warc_response(
    url: str,
    http_headers: HttpHeaders,
    body: bytes,
    record_id: str | None = None,
    date: str = DEFAULT_DATE,
    status: int = 200,
    reason: str | None = None,
) -> bytes:
    """A ``response`` record (``application/http; msgtype=response``) with payload digest."""
    block = http_response_block(status, http_headers, body, reason)
    return warc_record("response", block, "application/http; msgtype=response", url,
                       record_id or _record_id("response", url), date,
                       [("WARC-Payload-Digest", _sha1(body)), ("WARC-IP-Address", "192.0.2.1")])


def warc_request(url: str, record_id: str | None = None, date: str = DEFAULT_DATE) -> bytes:
    parsed = urlparse(url)
    target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    block = (f"GET {target or '/'} HTTP/1.1\r\nHost: {parsed.netloc}\r\n"
             "User-Agent: CCBot/2.0 (https://commoncrawl.org/faq/)\r\nAccept: text/html\r\n\r\n").encode()
    return warc_record("request", block, "application/http; msgtype=request", url,
                       record_id or _record_id("request", url), date)


def warc_metadata(
    url: str, fields: HttpHeaders, record_id: str | None = None, date: str = DEFAULT_DATE
) -> bytes:
    items = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
    block = "".join(f"{k}: {v}\r\n" for k, v in items).encode("utf-8")
    return warc_record("metadata", block, "application/warc-fields", url,
                       record_id or _record_id("metadata", url), date)


def warcinfo(filename: str, fields: HttpHeaders = (), date: str = DEFAULT_DATE) -> bytes:
    items = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
    items = [("software", "waon_hf.synthetic"), ("format", "WARC File Format 1.0"), *items]
    block = "".join(f"{k}: {v}\r\n" for k, v in items).encode("utf-8")
    return warc_record("warcinfo", block, "application/warc-fields", None, _record_id("warcinfo", filename),
                       date, [("WARC-Filename", filename)])


@dataclass(frozen=True)
class Garbage:
    """Bytes written verbatim between records (never gzipped)."""

    data: bytes


@dataclass(frozen=True)
class Truncated:
    """A record whose (gzipped, for .gz files) bytes are cut to ``keep`` of their length."""

    record: bytes
    keep: float = 0.5


WarcItem = bytes | Garbage | Truncated


def encode_item(item: WarcItem, gz: bool, compresslevel: int = 6) -> bytes:
    """Bytes of one item as written to a file (a gzip member per record when ``gz``)."""
    if isinstance(item, Garbage):
        return item.data
    raw = item.record if isinstance(item, Truncated) else item
    data = gzip.compress(raw, compresslevel, mtime=0) if gz else raw
    if isinstance(item, Truncated):
        data = data[: max(1, int(len(data) * item.keep))]
    return data


def write_warc(path: str | Path, records: Iterable[WarcItem], compresslevel: int = 6) -> None:
    """Write records; one gzip member per record when ``path`` ends in ``.gz`` (like Common Crawl)."""
    gz = str(path).endswith(".gz")
    with open(path, "wb") as fh:
        for rec in records:
            fh.write(encode_item(rec, gz, compresslevel))


# --------------------------------------------------------------------------------------------
# Corpora
# --------------------------------------------------------------------------------------------

BROKEN_KINDS = ("request", "metadata", "http_no_status_line", "http_no_blank_line", "binary_as_html",
                "oversized", "non_html", "http_404", "http_301", "garbage_between_members")

# zh: utf-8 pages alternate simplified/traditional (by page index), gb18030 is simplified, big5 traditional.
_OTHER_ENCODINGS = {
    "zh": ("utf-8", "gb18030", "big5", "utf-8"),
    "ko": ("utf-8", "euc-kr"),
    "en": ("utf-8", "cp1252"),
}
_UTF8_MODES = ("header", "meta", "http-equiv", "none", "bom")
_LEGACY_MODES = ("header", "meta", "http-equiv")


def _ja_modes(j: int, legacy_every: int = 1) -> tuple[str, str]:
    """(encoding, charset_in) of the j-th Japanese page: all encodings x declaration modes.

    ``legacy_every=1`` rotates evenly through all Japanese encodings; ``legacy_every=k`` makes one
    page in k a legacy encoding (Shift_JIS, CP932, EUC-JP, ISO-2022-JP in turn) and the rest UTF-8.
    """
    if legacy_every > 1:
        legacy = JA_ENCODINGS[1:]
        enc = legacy[(j // legacy_every) % len(legacy)] if j % legacy_every == legacy_every - 1 else "utf-8"
    else:
        enc = JA_ENCODINGS[j % len(JA_ENCODINGS)]
    mode = CHARSET_MODES[(j // len(JA_ENCODINGS)) % len(CHARSET_MODES)]
    if mode == "bom" and enc != "utf-8":
        mode = "header"
    if mode == "none" and enc not in ("utf-8", "shift_jis", "euc-jp"):
        mode = "meta"
    return enc, mode


def _other_modes(j: int, lang: str) -> tuple[str, str]:
    encs = _OTHER_ENCODINGS[lang]
    enc = encs[j % len(encs)]
    modes = _UTF8_MODES if enc == "utf-8" else _LEGACY_MODES
    return enc, modes[(j // 2) % len(modes)]


def corpus_plan(n_pages: int, ja_fraction: float, legacy_every: int = 1) -> list[tuple[str, str, str]]:
    """(lang, encoding, charset_in) per page: exact, evenly spread language mix, no randomness."""
    plan, counters = [], Counter[str]()
    others = itertools.cycle(("zh", "ko", "en"))
    for i in range(n_pages):
        is_ja = int((i + 1) * ja_fraction) > int(i * ja_fraction)
        lang = "ja" if is_ja else next(others)
        j = counters[lang]
        counters[lang] += 1
        plan.append((lang, *(_ja_modes(j, legacy_every) if lang == "ja" else _other_modes(j, lang))))
    return plan


def page_rng(seed: int, index: int) -> random.Random:
    """Per-page generator: pages do not depend on each other, so corpora can be built in parallel."""
    return random.Random(f"waon-synthetic:{seed}:{index}")


def _response_for(page: SyntheticPage, offset: int, status: int = 200) -> bytes:
    headers = [("Date", "Tue, 20 Feb 2024 12:00:00 GMT"), ("Server", "nginx"),
               ("Content-Type", page.content_type()), ("Content-Length", str(len(page.html))),
               ("Connection", "close")]
    return warc_response(page.url, headers, page.html, date=_date(offset), status=status)


@dataclass(frozen=True)
class _ChunkJob:
    seed: int
    start: int
    plan: list[tuple[str, str, str]]
    n_images: int
    target_bytes: int
    gz: bool
    compresslevel: int
    include_pages: bool


def _build_chunk(job: _ChunkJob) -> list[tuple[bytes, dict]]:
    """Encoded response records and page descriptions for consecutive pages (runs in workers)."""
    out = []
    for k, (lang, enc, mode) in enumerate(job.plan):
        i = job.start + k
        page = make_page(page_rng(job.seed, i), i, lang, enc, n_images=job.n_images,
                         target_bytes=job.target_bytes, charset_in=mode)
        info = page.meta() if job.include_pages else {"url": page.url, "lang": lang, "encoding": enc,
                                                      "n_pairs": len(page.expected_pairs)}
        out.append((encode_item(_response_for(page, i), job.gz, job.compresslevel), info))
    return out


def _broken_record(kind: str, rng: random.Random, n: int, oversized_bytes: int,
                   prev_url: str) -> tuple[WarcItem, str | None, list[tuple[str, str]]]:
    """(item, url, would-be pairs) for one broken kind; n makes urls unique."""
    url = f"https://broken.example.jp/{kind}/{n}.html"
    date = _date(10_000_000 + n)
    small = make_page(rng, 900_000 + n, "ja", "utf-8", n_images=4, target_bytes=3000)
    html = small.html.replace(b"\r", b"").replace(b"\n\n", b"\n")
    if kind == "request":
        return warc_request(prev_url, date=date), prev_url, []
    if kind == "metadata":
        fields = [("fetchTimeMs", "152"), ("charset-detected", "UTF-8"), ("languages-cld2", '{"ja": 98}')]
        return warc_metadata(prev_url, fields, date=date), prev_url, []
    if kind == "http_no_status_line":
        block = b"Content-Type: text/html; charset=UTF-8\r\nContent-Length: %d\r\n\r\n" % len(html) + html
        return warc_record("response", block, "application/http; msgtype=response", url, date=date), url, []
    if kind == "http_no_blank_line":
        block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=UTF-8\r\n" + html
        return warc_record("response", block, "application/http; msgtype=response", url, date=date), url, []
    if kind == "binary_as_html":
        body = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(1500)
        return warc_response(url, [("Content-Type", "text/html")], body, date=date), url, []
    if kind == "non_html":
        jfif = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00H\x00H\x00\x00"
        body = jfif + rng.randbytes(2500) + b"\xff\xd9"
        url = url.replace(".html", ".jpg")
        return warc_response(url, [("Content-Type", "image/jpeg")], body, date=date), url, []
    if kind == "http_404":
        headers = [("Content-Type", "text/html; charset=UTF-8")]
        return warc_response(url, headers, small.html, date=date, status=404), url, small.expected_pairs
    if kind == "http_301":
        body = b'<html><body><a href="https://www.example.jp/">moved</a></body></html>'
        headers = [("Location", "https://www.example.jp/"), ("Content-Type", "text/html")]
        return warc_response(url, headers, body, date=date, status=301), url, []
    if kind == "oversized":
        page = make_page(rng, 900_500 + n, "ja", "utf-8", n_images=8, target_bytes=8000)
        # A giant, very compressible table keeps the compressed file small.
        row = "<tr><td>商品番号</td><td>在庫あり</td><td>1,980円</td></tr>\n".encode()
        filler = row * max(1, (oversized_bytes - len(page.html)) // len(row) + 1)
        body = page.html.replace(b"</article>", b"<table>\n" + filler + b"</table>\n</article>", 1)
        return (warc_response(page.url, [("Content-Type", "text/html; charset=utf-8")], body, date=date),
                page.url, page.expected_pairs)
    if kind == "garbage_between_members":
        junk = b"GARBAGE\x00\x01\x02\xff\xfe not a gzip member \r\n\r\n" + rng.randbytes(64)
        return Garbage(junk), None, []
    raise ValueError(kind)


def _chunks(plan: list[tuple[str, str, str]], size: int) -> Iterable[tuple[int, list[tuple[str, str, str]]]]:
    for start in range(0, len(plan), size):
        yield start, plan[start:start + size]


def generate_corpus(
    path: str | Path,
    n_pages: int,
    ja_fraction: float,
    seed: int = 0,
    broken: bool = False,
    target_bytes: int = 20_000,
    n_images: int = 18,
    oversized_bytes: int = 3_000_000,
    compresslevel: int = 1,
    include_pages: bool = True,
    workers: int | None = None,
    legacy_every: int = 1,
) -> dict:
    """Write a WARC (gzip members if ``path`` ends in .gz) of ``n_pages`` pages and return a manifest.

    ``legacy_every``: 1 spreads Japanese pages evenly over UTF-8 and the four legacy encodings (the
    tests' default: every decoder path is exercised); 10 makes 9 in 10 Japanese pages UTF-8, close
    to the Japanese web today (the benchmarks' realistic mix).

    The output only depends on the arguments, not on ``workers`` (processes; default: one for small
    corpora, up to 4 from 2,000 pages). ``compresslevel`` defaults to 1 because gzip dominates the
    generation time; the members are still ordinary Common Crawl-style gzip members.

    Manifest keys: seed, n_pages, ja_fraction, broken, target_bytes, n_images, oversized_bytes,
    n_records (complete records incl. warcinfo), n_response_records (complete responses, broken
    ones included), counts_by_lang, counts_by_encoding ("lang/encoding"), n_japanese_html
    (well-formed 200 text/html ja pages), n_expected_pairs_ja, broken_records (kind, url,
    record_index or after_record_index, would-be expected_pairs) and, if ``include_pages``, pages
    (``SyntheticPage.meta()`` plus index and record_index).
    """
    path = Path(path)
    gz = path.name.endswith(".gz")
    plan = corpus_plan(n_pages, ja_fraction, legacy_every)
    if workers is None:
        workers = 1 if n_pages < 2000 else max(1, min(4, os.cpu_count() or 1))
    chunk = max(1, min(500, -(-n_pages // (workers * 4))))
    jobs = [_ChunkJob(seed, start, part, n_images, target_bytes, gz, compresslevel, include_pages)
            for start, part in _chunks(plan, chunk)]
    positions: dict[int, list[int]] = {}
    if broken:  # evenly spread, after these page indices
        for k in range(len(BROKEN_KINDS)):
            positions.setdefault((k + 1) * n_pages // (len(BROKEN_KINDS) + 1), []).append(k)
    broken_rng = random.Random(f"waon-synthetic-broken:{seed}")

    pages_meta: list[dict] = []
    broken_meta: list[dict] = []
    by_lang: Counter[str] = Counter()
    by_enc: Counter[str] = Counter()
    n_pairs_ja = n_responses = 0
    n_records = 1  # the warcinfo
    with open(path, "wb") as fh:
        info_record = warcinfo(path.name, {"description": f"synthetic corpus seed={seed}"})
        fh.write(encode_item(info_record, gz, compresslevel))
        if workers > 1 and len(jobs) > 1:
            pool = ProcessPoolExecutor(workers)
            results: Iterable[list[tuple[bytes, dict]]] = pool.map(_build_chunk, jobs)
        else:
            pool, results = None, map(_build_chunk, jobs)
        try:
            i = 0
            for part in results:
                for data, info in part:
                    fh.write(data)
                    lang = info["lang"]
                    by_lang[lang] += 1
                    by_enc[f"{lang}/{info['encoding']}"] += 1
                    if lang == "ja":
                        n_pairs_ja += len(info["expected_pairs"]) if include_pages else info["n_pairs"]
                    if include_pages:
                        pages_meta.append({"index": i, "record_index": n_records, **info})
                    n_records += 1
                    n_responses += 1
                    for k in positions.get(i, ()):
                        kind = BROKEN_KINDS[k]
                        item, url, pairs = _broken_record(kind, broken_rng, k, oversized_bytes, info["url"])
                        entry: dict = {"kind": kind, "url": url, "expected_pairs": [list(p) for p in pairs]}
                        if isinstance(item, Garbage):
                            entry["after_record_index"] = n_records - 1
                        else:
                            entry["record_index"] = n_records
                            n_records += 1
                            n_responses += kind not in ("request", "metadata")
                        fh.write(encode_item(item, gz, compresslevel))
                        broken_meta.append(entry)
                    i += 1
        finally:
            if pool is not None:
                pool.shutdown()
        if broken:
            tail = make_page(broken_rng, n_pages, "ja", "utf-8", n_images=n_images, target_bytes=target_bytes)
            fh.write(encode_item(Truncated(_response_for(tail, n_pages)), gz, compresslevel))
            broken_meta.append({"kind": "truncated_last_member", "url": tail.url,
                                "expected_pairs": [list(p) for p in tail.expected_pairs]})

    manifest = {
        "seed": seed, "n_pages": n_pages, "ja_fraction": ja_fraction, "broken": broken,
        "target_bytes": target_bytes, "n_images": n_images,
        "oversized_bytes": oversized_bytes if broken else None,
        "n_records": n_records,
        "n_response_records": n_responses,
        "counts_by_lang": dict(sorted(by_lang.items())),
        "counts_by_encoding": dict(sorted(by_enc.items())),
        "n_japanese_html": by_lang["ja"],
        "n_expected_pairs_ja": n_pairs_ja,
        "broken_records": broken_meta,
    }
    if include_pages:
        manifest["pages"] = pages_meta
    return manifest


# --------------------------------------------------------------------------------------------
# Images (for the download step's tests and benchmark). Pillow and numpy are imported lazily so
# that the page generator above keeps working without the ``images`` extra.
# --------------------------------------------------------------------------------------------

__all__ += ["synthetic_image", "warc_image_response"]


def synthetic_image(seed: int, width: int, height: int, fmt: str = "JPEG", quality: int = 90) -> bytes:
    """Encoded bytes of a deterministic ``width`` x ``height`` RGB picture.

    A two-colour gradient at a random angle, a dozen random ellipses and rectangles, and mild
    noise: thousands of distinct colours, no two seeds alike (so colour-count filters and
    perceptual hashes see realistic input), and JPEG sizes close to photos of the same size.
    """
    import io

    import numpy as np
    from PIL import Image, ImageDraw

    rng = random.Random(f"waon-synthetic-image:{seed}")
    nrng = np.random.default_rng(rng.getrandbits(64))
    c0 = np.array([rng.randrange(256) for _ in range(3)], dtype=np.float32)
    c1 = np.array([rng.randrange(256) for _ in range(3)], dtype=np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = xs * np.cos(angle) / max(width, 1) + ys * np.sin(angle) / max(height, 1)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    pixels = c0 + t[..., None] * (c1 - c0)
    pixels += nrng.integers(-10, 11, size=pixels.shape, dtype=np.int16)
    img = Image.fromarray(pixels.clip(0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(6, 14)):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1 = min(width, x0 + rng.randint(1, max(2, width // 2)))
        y1 = min(height, y0 + rng.randint(1, max(2, height // 2)))
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    out = io.BytesIO()
    options = {"quality": quality} if fmt.upper() in ("JPEG", "WEBP") else {}
    img.save(out, format=fmt, **options)
    return out.getvalue()


def warc_image_response(
    url: str, data: bytes, content_type: str = "image/jpeg", extra_headers: HttpHeaders = (), status: int = 200,
) -> bytes:
    """A WARC ``response`` record serving ``data`` as an image (as Common Crawl stores fetched images)."""
    items = list(extra_headers.items()) if isinstance(extra_headers, Mapping) else list(extra_headers)
    headers = [("Content-Type", content_type), ("Content-Length", str(len(data))), *items]
    return warc_response(url, headers, data, status=status)


def synthetic_jpegs(n: int, seed: int = 0, quality: int = 85) -> list[dict]:
    """``n`` blocky random JPEGs of 200-320 px as ``{"bytes", "path"}`` dicts (``datasets.Image`` values)."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    blobs = []
    for _ in range(n):
        w, h = int(rng.integers(200, 320)), int(rng.integers(200, 320))
        small = rng.integers(0, 256, size=(h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((w, h), Image.Resampling.NEAREST)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=quality)
        blobs.append({"bytes": buf.getvalue(), "path": None})
    return blobs
