package sharepage

import (
	"golang.org/x/text/language"
)

// The page speaks English or Korean, chosen by Accept-Language; English when neither is asked for.
var (
	supported = []language.Tag{language.English, language.Korean}
	matcher   = language.NewMatcher(supported)
)

func pickLang(acceptLanguage string) string {
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(tags) == 0 {
		return "en"
	}
	_, i, conf := matcher.Match(tags...)
	if conf == language.No {
		return "en"
	}
	if i == 1 {
		return "ko"
	}
	return "en"
}

type texts struct {
	Save, Fallback, VCard, Scan, SharedBy, Brand, Tagline string
	Description                                           string // fmt: card name, profile name
	NotFoundTitle, NotFoundBody                           string
	GoneTitle, GoneBody                                   string
	TooManyTitle, TooManyBody                             string
	Fields                                                map[string]string
}

var catalog = map[string]texts{
	"en": {
		Save:          "Save to B.Ca",
		Fallback:      "Button does nothing? Open this card page again",
		VCard:         "Download vCard",
		Scan:          "Scan to open this card on your phone",
		SharedBy:      "Shared by",
		Brand:         "B.Ca",
		Tagline:       "Business cards you can chat with",
		Description:   "%s: a business card shared by %s on B.Ca",
		NotFoundTitle: "Link not found",
		NotFoundBody:  "This link does not exist. Check that it was copied completely.",
		GoneTitle:     "This link no longer works",
		GoneBody:      "The link has expired or was withdrawn by the person who shared it.",
		TooManyTitle:  "Too many requests",
		TooManyBody:   "Please wait a moment and try again.",
		Fields:        map[string]string{"email": "Email", "phone": "Phone", "sns": "SNS", "address": "Address", "title": "Title", "company": "Company"},
	},
	"ko": {
		Save:          "B.Ca에 저장",
		Fallback:      "버튼이 동작하지 않나요? 이 명함 페이지를 다시 열기",
		VCard:         "vCard 다운로드",
		Scan:          "휴대폰으로 스캔해서 이 명함 열기",
		SharedBy:      "공유한 사람",
		Brand:         "B.Ca",
		Tagline:       "대화가 되는 명함",
		Description:   "%[2]s님이 B.Ca에서 공유한 명함: %[1]s",
		NotFoundTitle: "링크를 찾을 수 없습니다",
		NotFoundBody:  "존재하지 않는 링크입니다. 링크를 끝까지 복사했는지 확인해 주세요.",
		GoneTitle:     "더 이상 사용할 수 없는 링크입니다",
		GoneBody:      "링크가 만료되었거나 공유한 사람이 링크를 거두어들였습니다.",
		TooManyTitle:  "요청이 너무 많습니다",
		TooManyBody:   "잠시 후 다시 시도해 주세요.",
		Fields:        map[string]string{"email": "이메일", "phone": "전화", "sns": "SNS", "address": "주소", "title": "직함", "company": "회사"},
	},
}
