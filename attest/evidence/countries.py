"""Country codes of ICAO Doc 9303 Part 3 (section 5): ISO 3166-1 alpha-3 and ICAO's own codes.

Pure data. Machine-readable zones name the issuing state and the holder's nationality with
three-letter codes: ISO 3166-1 alpha-3, plus codes ICAO added for cases ISO does not cover.
:func:`lookup` says whether a code is known and which ISO 3166-1 alpha-2 nationality (the
``citizenship`` attribute) it stands for, if any.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["ALPHA3_TO_ALPHA2", "ICAO_SPECIAL_CODES", "CountryCode", "lookup"]

# Every officially assigned ISO 3166-1 alpha-3 code with its alpha-2 code (249 pairs).
# A test checks the alpha-2 side equals attest.evidence.attributes.ISO_3166_ALPHA2.
# A grid is easier to audit against the ISO table than a 249-entry dict literal.
ALPHA3_TO_ALPHA2: Final[dict[str, str]] = dict(
    pair.split(":")  # every item is "AAA:AA"
    for pair in """
    ABW:AW AFG:AF AGO:AO AIA:AI ALA:AX ALB:AL AND:AD ARE:AE ARG:AR ARM:AM ASM:AS ATA:AQ
    ATF:TF ATG:AG AUS:AU AUT:AT AZE:AZ
    BDI:BI BEL:BE BEN:BJ BES:BQ BFA:BF BGD:BD BGR:BG BHR:BH BHS:BS BIH:BA BLM:BL BLR:BY
    BLZ:BZ BMU:BM BOL:BO BRA:BR BRB:BB BRN:BN BTN:BT BVT:BV BWA:BW
    CAF:CF CAN:CA CCK:CC CHE:CH CHL:CL CHN:CN CIV:CI CMR:CM COD:CD COG:CG COK:CK COL:CO
    COM:KM CPV:CV CRI:CR CUB:CU CUW:CW CXR:CX CYM:KY CYP:CY CZE:CZ
    DEU:DE DJI:DJ DMA:DM DNK:DK DOM:DO DZA:DZ
    ECU:EC EGY:EG ERI:ER ESH:EH ESP:ES EST:EE ETH:ET
    FIN:FI FJI:FJ FLK:FK FRA:FR FRO:FO FSM:FM
    GAB:GA GBR:GB GEO:GE GGY:GG GHA:GH GIB:GI GIN:GN GLP:GP GMB:GM GNB:GW GNQ:GQ GRC:GR
    GRD:GD GRL:GL GTM:GT GUF:GF GUM:GU GUY:GY
    HKG:HK HMD:HM HND:HN HRV:HR HTI:HT HUN:HU
    IDN:ID IMN:IM IND:IN IOT:IO IRL:IE IRN:IR IRQ:IQ ISL:IS ISR:IL ITA:IT
    JAM:JM JEY:JE JOR:JO JPN:JP
    KAZ:KZ KEN:KE KGZ:KG KHM:KH KIR:KI KNA:KN KOR:KR KWT:KW
    LAO:LA LBN:LB LBR:LR LBY:LY LCA:LC LIE:LI LKA:LK LSO:LS LTU:LT LUX:LU LVA:LV
    MAC:MO MAF:MF MAR:MA MCO:MC MDA:MD MDG:MG MDV:MV MEX:MX MHL:MH MKD:MK MLI:ML MLT:MT
    MMR:MM MNE:ME MNG:MN MNP:MP MOZ:MZ MRT:MR MSR:MS MTQ:MQ MUS:MU MWI:MW MYS:MY MYT:YT
    NAM:NA NCL:NC NER:NE NFK:NF NGA:NG NIC:NI NIU:NU NLD:NL NOR:NO NPL:NP NRU:NR NZL:NZ
    OMN:OM
    PAK:PK PAN:PA PCN:PN PER:PE PHL:PH PLW:PW PNG:PG POL:PL PRI:PR PRK:KP PRT:PT PRY:PY
    PSE:PS PYF:PF
    QAT:QA
    REU:RE ROU:RO RUS:RU RWA:RW
    SAU:SA SDN:SD SEN:SN SGP:SG SGS:GS SHN:SH SJM:SJ SLB:SB SLE:SL SLV:SV SMR:SM SOM:SO
    SPM:PM SRB:RS SSD:SS STP:ST SUR:SR SVK:SK SVN:SI SWE:SE SWZ:SZ SXM:SX SYC:SC SYR:SY
    TCA:TC TCD:TD TGO:TG THA:TH TJK:TJ TKL:TK TKM:TM TLS:TL TON:TO TTO:TT TUN:TN TUR:TR
    TUV:TV TWN:TW TZA:TZ
    UGA:UG UKR:UA UMI:UM URY:UY USA:US UZB:UZ
    VAT:VA VCT:VC VEN:VE VGB:VG VIR:VI VNM:VN VUT:VU
    WLF:WF WSM:WS
    YEM:YE
    ZAF:ZA ZMB:ZM ZWE:ZW
    """.split()  # noqa: SIM905 -- see above
)


@dataclass(frozen=True, slots=True)
class CountryCode:
    """What an MRZ country code means. ``alpha2`` is None when it names no nationality."""

    code: str
    alpha2: str | None
    note: str


#: ICAO Doc 9303 Part 3, 5.1 (and its tables of codes for organisations and persons without
#: a nationality). ``alpha2`` is the ISO 3166-1 nationality the code evidences, or None.
ICAO_SPECIAL_CODES: Final[dict[str, CountryCode]] = {
    # Germany uses the one-letter code D (written "D<<" in the three-character field).
    "D": CountryCode("D", "DE", "Germany"),
    # British nationality classes: British nationals, holders of UK-issued passports.
    "GBD": CountryCode("GBD", "GB", "British Overseas Territories Citizen"),
    "GBN": CountryCode("GBN", "GB", "British National (Overseas)"),
    "GBO": CountryCode("GBO", "GB", "British Overseas Citizen"),
    "GBP": CountryCode("GBP", "GB", "British Protected Person"),
    "GBS": CountryCode("GBS", "GB", "British Subject"),
    # Organisations that issue travel documents: valid issuers, never a nationality.
    "EUE": CountryCode("EUE", None, "European Union"),
    "UNO": CountryCode("UNO", None, "United Nations Organization or one of its officials"),
    "UNA": CountryCode("UNA", None, "Specialized agency of the United Nations or its official"),
    "UNK": CountryCode("UNK", None, "Resident of Kosovo (UNMIK travel document)"),
    "XBA": CountryCode("XBA", None, "African Development Bank"),
    "XIM": CountryCode("XIM", None, "African Export-Import Bank"),
    "XCC": CountryCode("XCC", None, "Caribbean Community"),
    "XCE": CountryCode("XCE", None, "Council of Europe"),
    "XCO": CountryCode("XCO", None, "Common Market for Eastern and Southern Africa"),
    "XEC": CountryCode("XEC", None, "Economic Community of West African States"),
    "XPO": CountryCode("XPO", None, "International Criminal Police Organization"),
    "XES": CountryCode("XES", None, "Organisation of Eastern Caribbean States"),
    "XMP": CountryCode("XMP", None, "Parliamentary Assembly of the Mediterranean"),
    "XOM": CountryCode("XOM", None, "Sovereign Military Order of Malta"),
    "XDC": CountryCode("XDC", None, "Southern African Development Community"),
    # Persons without a nationality (or none stated): a valid code that evidences none.
    "XXA": CountryCode("XXA", None, "Stateless person (1954 Convention)"),
    "XXB": CountryCode("XXB", None, "Refugee (1951 Convention)"),
    "XXC": CountryCode("XXC", None, "Refugee (other than the 1951 Convention)"),
    "XXX": CountryCode("XXX", None, "Unspecified nationality"),
}


def lookup(field: str) -> CountryCode | None:
    """Interpret a three-character MRZ country field (fillers allowed at the end), or None.

    ``"D<<"`` is Germany; ``"FRA"`` is France; an unknown or malformed code is None. The
    specimen code ``UTO`` (Utopia) of ICAO's examples is deliberately unknown: no real
    document carries it.
    """
    if len(field) != 3:
        return None
    code = field.rstrip("<")
    special = ICAO_SPECIAL_CODES.get(code)
    if special is not None:
        return special
    if len(code) == 3 and code in ALPHA3_TO_ALPHA2:
        return CountryCode(code, ALPHA3_TO_ALPHA2[code], "ISO 3166-1")
    return None
