from datetime import date, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from schema.errors import ValidationError
from schema.validation import (
    IdNumber,
    check_length,
    check_person_name,
    id_check_char,
    is_valid_id_number,
    mask_id_number,
    mask_phone,
    normalize_mobile,
    normalize_text,
    parse_id_number,
    require,
)

TODAY = date(2026, 6, 1)


def check_char(first17: str) -> str:
    """GB 11643-1999 check character, computed here independently of the module under test."""
    weights = [2 ** (17 - i) % 11 for i in range(17)]  # = 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, …
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights, strict=True)) % 11]


def make_id(region: str = "110101", born: date = date(1990, 3, 7), seq: str = "123") -> str:
    first17 = f"{region}{born:%Y%m%d}{seq}"
    return first17 + check_char(first17)


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else "\u3000" if c == " " else c for c in text)


def error_of(fn, *args, **kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as e:
        fn(*args, **kwargs)
    return e.value


# --- normalize_text ---


def test_normalize_text_folds_full_width_and_strips():
    assert normalize_text("\u3000ＡＢＣ１２３ｘ\u3000 ") == "ABC123x"
    assert normalize_text(None) == ""
    assert normalize_text("张三") == "张三"


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E)))
def test_normalize_text_undoes_full_width_ascii(text):
    assert normalize_text(full_width(text)) == text


# --- ID numbers ---


def test_weights_match_the_standard():
    assert [2 ** (17 - i) % 11 for i in range(17)] == [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def test_standard_example_with_x():
    got = parse_id_number("11010519491231002X", today=TODAY)  # the example in GB 11643-1999
    assert got == IdNumber("11010519491231002X", "110105", date(1949, 12, 31), "女")
    assert id_check_char("11010519491231002") == "X"


def test_constructed_number():
    number = make_id()
    got = parse_id_number(number, today=TODAY)
    assert got.number == number
    assert got.region == "110101"
    assert got.birth_date == date(1990, 3, 7)
    assert got.gender == "男"  # 17th digit 3 is odd
    assert parse_id_number(make_id(seq="124"), today=TODAY).gender == "女"


def test_lower_case_x_spaces_and_full_width_are_accepted():
    expected = parse_id_number("11010519491231002X", today=TODAY)
    for typed in ["11010519491231002x", " 110105 19491231 002x ", full_width("110105 19491231002x")]:
        assert parse_id_number(typed, today=TODAY) == expected


def test_born_today_is_fine():
    assert parse_id_number(make_id(born=TODAY), today=TODAY).birth_date == TODAY


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "请填写身份证号"),
        ("  ", "请填写身份证号"),
        ("11010519491231002", "身份证号应为18位，当前为17位"),
        ("11010519491231002X1", "身份证号应为18位，当前为19位"),
        ("110105491231002", "这是15位的旧身份证号，已停止使用，请填写18位身份证号"),
        ("11010519491231OO2X", "身份证号只能包含数字（最后一位可以是X），请检查“O”"),
        ("110105-19491231002X", "身份证号只能包含数字（最后一位可以是X），请检查“-”"),
        ("1101051949123100X2", "身份证号只有最后一位可以是X，请核对"),
        ("110105194912310021", "身份证号校验不通过，可能有数字输错，请对照证件逐位核对"),
    ],
)
def test_id_number_errors(typed, message):
    e = error_of(parse_id_number, typed, today=TODAY)
    assert e.message == message
    assert e.field == "id_number"


def test_check_failure_does_not_reveal_the_expected_character():
    e = error_of(parse_id_number, "110105194912310021", today=TODAY)
    assert "X" not in e.message


def test_impossible_birth_date():
    first17 = "11010119900230123"  # 30 February
    e = error_of(parse_id_number, first17 + check_char(first17), today=TODAY)
    assert e.message == "身份证号第7至14位的出生日期（1990年02月30日）不是有效日期，请核对"


def test_birth_before_1900():
    e = error_of(parse_id_number, make_id(born=date(1899, 12, 31)), today=TODAY)
    assert e.message == "身份证号中的出生日期（1899年12月31日）早于1900年，请核对第7至14位"
    assert parse_id_number(make_id(born=date(1900, 1, 1)), today=TODAY).birth_date == date(1900, 1, 1)


def test_birth_in_the_future():
    e = error_of(parse_id_number, make_id(born=TODAY + timedelta(1)), today=TODAY)
    assert e.message == "身份证号中的出生日期（2026年06月02日）晚于今天，请核对第7至14位"


def test_today_defaults_to_the_real_date():
    assert is_valid_id_number(make_id(born=date.today()))
    assert not is_valid_id_number(make_id(born=date.today() + timedelta(1)))


def test_is_valid_id_number():
    assert is_valid_id_number("11010519491231002x")
    assert not is_valid_id_number("110105194912310021")
    assert not is_valid_id_number(None)
    assert not is_valid_id_number(110105194912310021)


def test_masking():
    assert mask_id_number("11010519491231002X") == "1101**********002X"
    assert parse_id_number(" 11010519491231002x", today=TODAY).masked == "1101**********002X"
    assert mask_id_number("110105491231002") == "1101********002"
    assert mask_id_number("1101051949") == "**********"


births = st.dates(date(1900, 1, 1), TODAY)
id_numbers = st.builds(
    lambda region, born, seq: make_id(region, born, seq),
    st.from_regex(r"[0-9]{6}", fullmatch=True),
    births,
    st.from_regex(r"[0-9]{3}", fullmatch=True),
)


@given(id_numbers)
def test_valid_numbers_round_trip(number):
    got = parse_id_number(number.lower(), today=TODAY)
    assert got.number == number
    assert got.region == number[:6]
    assert f"{got.birth_date:%Y%m%d}" == number[6:14]
    assert got.gender == ("男" if int(number[16]) % 2 else "女")


@given(id_numbers, st.integers(0, 17), st.sampled_from("0123456789X"))
def test_any_single_character_error_is_caught(number, position, replacement):
    assume(number[position] != replacement)
    assume(position == 17 or replacement != "X")
    typo = number[:position] + replacement + number[position + 1 :]
    assert not is_valid_id_number(typo)


@given(id_numbers, st.integers(0, 15))
def test_any_adjacent_swap_is_caught(number, position):
    assume(number[position] != number[position + 1])
    swapped = number[:position] + number[position + 1] + number[position] + number[position + 2 :]
    assert not is_valid_id_number(swapped)


@given(id_numbers)
def test_masking_never_reveals_characters_5_to_14(number):
    masked = mask_id_number(number)
    assert len(masked) == 18
    assert masked[4:14] == "*" * 10
    assert masked[:4] == number[:4] and masked[14:] == number[14:]


# --- mobile numbers ---


@pytest.mark.parametrize(
    "typed",
    [
        "13800138000",
        " 138 0013 8000 ",
        "138-0013-8000",
        "+86 138 0013 8000",
        "+8613800138000",
        "8613800138000",
        "0086 13800138000",
        full_width("138 0013 8000"),
        "１３８－００１３－８０００",
    ],
)
def test_mobile_forms(typed):
    assert normalize_mobile(typed) == "13800138000"


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "请填写手机号"),
        ("1380013800", "手机号应为11位数字，当前为10位"),
        ("138001380001", "手机号应为11位数字，当前为12位"),
        ("138OO138000", "手机号只能包含数字，请检查“O”"),
        ("0571-8888888", "手机号应以1开头（固定电话不能填在这里）"),
        ("12800138000", "手机号第2位应为3至9，请核对"),
        ("+86 12800138000", "手机号第2位应为3至9，请核对"),
    ],
)
def test_mobile_errors(typed, message):
    e = error_of(normalize_mobile, typed)
    assert e.message == message
    assert e.field == "phone"


mobiles = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)


@given(
    mobiles,
    st.sampled_from(["", "+86", "86", "0086", "+86 "]),
    st.sampled_from(["", " ", "-"]),
    st.booleans(),
)
def test_formatted_mobiles_normalise(mobile, prefix, sep, wide):
    typed = prefix + sep.join([mobile[:3], mobile[3:7], mobile[7:]])
    if wide:
        typed = full_width(typed)
    assert normalize_mobile(typed) == mobile


@given(mobiles)
def test_mobile_masking_hides_the_middle(mobile):
    masked = mask_phone(mobile)
    assert masked == mobile[:3] + "****" + mobile[7:]


def test_mask_phone_other_values():
    assert mask_phone("+86 138-0013-8000") == "138****8000"
    assert mask_phone("0571-88886666") == "********6666"
    assert mask_phone("123") == "***"
    assert mask_phone(None) == ""
    assert mask_phone("") == ""


# --- generic fields ---


def test_require():
    assert require("  张三 ", "姓名") == "张三"
    assert error_of(require, None, "联系地址").message == "请填写联系地址"
    assert error_of(require, "\u3000 ", "联系地址").message == "请填写联系地址"
    assert error_of(require, "", "联系地址", field="address").field == "address"


def test_require_keeps_chinese_punctuation():
    assert require("一组（东头），３号", "地址") == "一组（东头），３号"


def test_check_length():
    assert check_length(" 事由 ", "事由", 10) == "事由"
    assert check_length("", "备注", 10) == ""
    assert error_of(check_length, "一二三四五六", "事由", 5).message == "事由不能超过5个字，当前为6个字"
    assert error_of(check_length, "一", "事由", 5, min_len=2).message == "事由不能少于2个字，当前为1个字"
    assert error_of(check_length, "  ", "事由", 5, min_len=1).message == "请填写事由"
    assert check_length("𠀀𠀁𠀂", "姓名", 3) == "𠀀𠀁𠀂"  # CJK Ext. B characters count as one 字 each


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("张三", "张三"),
        (" 欧阳 娜娜 ", "欧阳 娜娜"),
        ("阿卜杜拉·艾则孜", "阿卜杜拉·艾则孜"),
        ("阿卜杜拉•艾则孜", "阿卜杜拉·艾则孜"),
        ("John  Smith", "John Smith"),
        ("ＪＯＨＮ", "JOHN"),
        ("王𠀀", "王𠀀"),
        ("次仁卓玛", "次仁卓玛"),
    ],
)
def test_person_names(typed, expected):
    assert check_person_name(typed) == expected


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "请填写姓名"),
        ("张三3", "姓名不能包含数字"),
        ("张三１", "姓名不能包含数字"),
        ("张三!", "姓名只能包含文字、“·”和空格，请删除“!”"),
        ("张-三", "姓名只能包含文字、“·”和空格，请删除“-”"),
        ("·阿依", "姓名中的“·”只能用在两段名字之间"),
        ("阿依··古丽", "姓名中的“·”只能用在两段名字之间"),
        ("张" * 31, "姓名不能超过30个字，当前为31个字"),
    ],
)
def test_person_name_errors(typed, message):
    assert error_of(check_person_name, typed).message == message


def test_person_name_label_and_field():
    e = error_of(check_person_name, "", "代理人姓名", field="agent_name")
    assert e.message == "请填写代理人姓名"
    assert e.field == "agent_name"
    assert check_person_name("张" * 30) == "张" * 30
