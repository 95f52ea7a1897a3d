from wagtail import blocks
from wagtail.documents.blocks import DocumentChooserBlock
from wagtail.embeds.blocks import EmbedBlock
from wagtail.images.blocks import ImageBlock as WagtailImageBlock


class ImageBlock(blocks.StructBlock):
    """Wagtail's image block (alt text, or marked decorative) with a caption."""

    image = WagtailImageBlock()
    caption = blocks.CharBlock(required=False)

    class Meta:
        icon = "image"
        template = "courses/blocks/image_block.html"


class CodeBlock(blocks.StructBlock):
    language = blocks.ChoiceBlock(
        choices=[
            ("python", "Python"),
            ("javascript", "JavaScript"),
            ("html", "HTML"),
            ("css", "CSS"),
            ("bash", "Shell"),
            ("sql", "SQL"),
            ("text", "Plain text"),
        ],
        default="python",
    )
    code = blocks.TextBlock()

    class Meta:
        icon = "code"
        template = "courses/blocks/code_block.html"


class CalloutBlock(blocks.StructBlock):
    kind = blocks.ChoiceBlock(
        choices=[("note", "Note"), ("tip", "Tip"), ("warning", "Warning")], default="note"
    )
    text = blocks.RichTextBlock(features=["bold", "italic", "link", "code"])

    class Meta:
        icon = "warning"
        template = "courses/blocks/callout_block.html"


class VideoBlock(blocks.StructBlock):
    video = EmbedBlock(help_text="A YouTube or Vimeo address.")
    caption = blocks.CharBlock(required=False)

    class Meta:
        icon = "media"
        template = "courses/blocks/video_block.html"


class StreamVideoBlock(blocks.StructBlock):
    video_uid = blocks.RegexBlock(
        regex=r"^[0-9a-f]{32}$",
        help_text=(
            "Cloudflare Stream video uid (32 hexadecimal characters). With signing keys set, "
            "only learners who may open this lesson get a short-lived playback token."
        ),
        error_messages={"invalid": "A Stream video uid is 32 hexadecimal characters."},
    )
    caption = blocks.CharBlock(required=False)

    class Meta:
        icon = "media"
        label = "Stream video"
        template = "courses/blocks/stream_block.html"


class AttachmentBlock(blocks.StructBlock):
    document = DocumentChooserBlock()
    description = blocks.CharBlock(required=False)

    class Meta:
        icon = "doc-full"
        template = "courses/blocks/attachment_block.html"


class LessonBodyBlock(blocks.StreamBlock):
    heading = blocks.CharBlock(
        form_classname="title", icon="title", template="courses/blocks/heading_block.html"
    )
    text = blocks.RichTextBlock()
    image = ImageBlock()
    code = CodeBlock()
    callout = CalloutBlock()
    video = VideoBlock()
    stream_video = StreamVideoBlock()
    attachment = AttachmentBlock()


class CourseDescriptionBlock(blocks.StreamBlock):
    heading = blocks.CharBlock(
        form_classname="title", icon="title", template="courses/blocks/heading_block.html"
    )
    text = blocks.RichTextBlock()
    image = ImageBlock()
    callout = CalloutBlock()
