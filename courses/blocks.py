from django.core.exceptions import ValidationError
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


class QuizChoiceBlock(blocks.StructBlock):
    text = blocks.CharBlock(max_length=300)
    correct = blocks.BooleanBlock(required=False, help_text="A right answer.")

    class Meta:
        icon = "tick"
        label = "Choice"


class QuizQuestionBlock(blocks.StructBlock):
    prompt = blocks.TextBlock(max_length=1000)
    multiple = blocks.BooleanBlock(
        required=False,
        label="Several right answers",
        help_text="Learners tick every right answer. Otherwise exactly one choice is right.",
    )
    choices = blocks.ListBlock(QuizChoiceBlock(), min_num=2, max_num=10)
    explanation = blocks.RichTextBlock(
        required=False,
        features=["bold", "italic", "link", "code"],
        help_text="Shown once the learner has answered.",
    )

    class Meta:
        icon = "help"
        label = "Question"

    def clean(self, value):
        value = super().clean(value)
        right = sum(1 for choice in value["choices"] if choice["correct"])
        if right == 0:
            raise blocks.StructBlockValidationError(
                {"choices": ValidationError("Mark at least one choice as right.")}
            )
        if right > 1 and not value["multiple"]:
            raise blocks.StructBlockValidationError(
                {"multiple": ValidationError("Several choices are right: tick this.")}
            )
        return value


class QuizBlock(blocks.StructBlock):
    """Graded on the server: the page shows prompts and choices, never which are right."""

    title = blocks.CharBlock(default="Check your understanding", max_length=200)
    pass_mark = blocks.IntegerBlock(
        default=70, min_value=0, max_value=100, help_text="Percent of questions right to pass."
    )
    required = blocks.BooleanBlock(
        required=False,
        label="Required to complete the lesson",
        help_text="Learners must pass this quiz before they can mark the lesson complete.",
    )
    questions = blocks.ListBlock(QuizQuestionBlock(), min_num=1, max_num=50)

    class Meta:
        icon = "list-ul"
        label = "Quiz"
        # The lesson page renders quizzes through its "quiz" slot; anywhere else only the title.
        template = "courses/blocks/quiz_block.html"


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
    quiz = QuizBlock()


class CourseDescriptionBlock(blocks.StreamBlock):
    heading = blocks.CharBlock(
        form_classname="title", icon="title", template="courses/blocks/heading_block.html"
    )
    text = blocks.RichTextBlock()
    image = ImageBlock()
    callout = CalloutBlock()
